-- A block list and an allow list: client addresses, sender addresses and sender domains. Fill the tables in.
local address = require("lib.address")

local blocked_clients = {}    -- ["192.0.2.66"] = true
local blocked_senders = {}    -- ["spammer@example.net"] = true, or a whole domain: ["example.net"] = true
local allowed_senders = {}    -- the same forms; these skip the other `mail` hooks

local function listed(list, sender)
  return list[sender:lower()] or list[address.domain(sender) or ""] or false
end

tern.hook("connect", function(tx)
  if blocked_clients[tx.client.address] then return tern.reject(554, "5.7.1", "Your address is blocked here") end
end)

tern.hook("mail", function(tx)
  if address.is_null(tx.sender) then return end
  if listed(allowed_senders, tx.sender) then return tern.accept() end
  if listed(blocked_senders, tx.sender) then
    return tern.reject(550, "5.7.1", "Mail from <" .. tx.sender .. "> is not accepted here")
  end
end, {priority = -10})
