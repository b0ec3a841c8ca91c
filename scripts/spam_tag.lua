-- Marks mail an upstream filter scored as spam (a flag and a tag in the subject), and files the worst into Junk.
local headers = require("lib.headers")

local tag_from = 5     -- X-Spam-Flag: YES from this score on
local junk_from = 10   -- into the Junk folder from this score on

tern.hook("message", function(tx)
  local score = headers.spam_score(tx)
  if score == nil then return end
  if score >= junk_from then return tern.quarantine("Junk") end
  if score >= tag_from then
    tx:add_header("X-Spam-Flag", "YES")
    local subject = tx:header("Subject") or ""
    if not subject:find("[SPAM]", 1, true) then tx:set_header("Subject", "[SPAM] " .. subject) end
  end
end)
