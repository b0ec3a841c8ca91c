-- A per-sender rate limit: at most `limit` messages an hour from one authenticated user (or, for others, one
-- client address); past it, MAIL is deferred until the hour turns.
local limit = 200

tern.hook("mail", function(tx)
  local who = tx.client.user ~= "" and tx.client.user or tx.client.address
  local hour = math.floor(os.time() / 3600)
  local key = "rate:" .. who .. "|" .. hour
  local count = (tonumber(tern.kv.get(key)) or 0) + 1
  tern.kv.set(key, tostring(count), 3600)
  if count > limit then
    return tern.defer(450, "4.7.1", "Too many messages this hour, please try again later")
  end
end)
