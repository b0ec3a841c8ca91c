tern.hook("connect", function(tx) tern.count("connects") return tern.next() end)
tern.hook("rcpt", function(tx)
  if tx.recipient:find("alice") then return tern.reject(550, "5.1.1", "no " .. tx.recipient) end
  local answer, err = tern.dns("txt", "policy.example.test")
  local conn = tern.tcp("127.0.0.1", 25, {timeout = 1})
  local value = tern.kv.get("k")
  tern.kv.set("k", "v", 10)
  return tern.defer(451, "4.7.1", tostring(err))
end, {priority = -5})
tern.hook("message", function(tx)
  tx:add_header("X-Fuzz", "yes")
  tx:set_header("Subject", "[tagged] " .. (tx:header("subject") or ""))
  tx:remove_header("Received")
  for _, part in ipairs(tx:parts()) do
    if (part.name or ""):match("%.exe$") then tx:remove_recipient("bob@example.test") end
    local content = part:content()
  end
  tx:set_sender("")
  tx:add_recipient("archive@example.test")
  return "quarantine"
end)
tern.hook("deliver", function(tx)
  tx:add_flag("\\Flagged")
  tx:redirect("bob@example.test")
  local sent, why = tx:vacation{text = "away", days = 3, subject = "Auto", addresses = {"a@b"}}
  return tern.quarantine("Lists")
end)
tern.hook("route", function(tx) return tern.route("mx") end)
