-- Files mailing-list mail into the Lists folder instead of the inbox.
local headers = require("lib.headers")

tern.hook("message", function(tx)
  if headers.is_list(tx) then return tern.quarantine("Lists") end
end)
