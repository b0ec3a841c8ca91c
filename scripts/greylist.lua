-- Greylisting: a first attempt from an unknown (client network, sender, recipient) triplet is deferred; a
-- real mail server comes back after a few minutes and is let through, and remembered for a month.
local address = require("lib.address")

local delay = 300              -- seconds a new triplet waits
local remember = 35 * 24 * 3600  -- seconds a triplet that came back is known
local forget = 24 * 3600       -- seconds a triplet that never came back is kept

local function network(client)
  local a, b, c = client:match("^(%d+)%.(%d+)%.(%d+)%.%d+$")
  if a then return a .. "." .. b .. "." .. c end  -- IPv4: the /24, as senders retry from another address of it
  return client
end

tern.hook("rcpt", function(tx)
  if tx.client.user ~= "" or address.is_null(tx.sender) then return end  -- logged-in users, and bounces
  local key = "greylist:" .. network(tx.client.address) .. "|" .. tx.sender:lower() .. "|" .. tx.recipient:lower()
  local first = tonumber(tern.kv.get(key))
  local now = os.time()
  if first == nil then
    tern.kv.set(key, tostring(now), forget)
    return tern.defer(451, "4.7.1", "Greylisted, please try again in a few minutes")
  end
  if now - first < delay then
    return tern.defer(451, "4.7.1", "Greylisted, please try again in a few minutes")
  end
  tern.kv.set(key, tostring(first), remember)
end)
