-- Header helpers for hooks at `message`: require("lib.headers")
local headers = {}

-- The spam score a filter upstream wrote: X-Spam-Score: 7.5, or X-Spam-Status: Yes, score=7.5 ...; nil if none.
function headers.spam_score(tx)
  local score = tonumber(tx:header("X-Spam-Score") or "")
  if score then return score end
  local status = tx:header("X-Spam-Status")
  if status then return tonumber(status:match("score=(%-?[%d.]+)")) end
  return nil
end

-- Whether the message comes from a mailing list (RFC 2919 List-Id, RFC 2369 List-* fields, Precedence).
function headers.is_list(tx)
  if tx:header("List-Id") or tx:header("List-Unsubscribe") or tx:header("List-Post") then return true end
  local precedence = (tx:header("Precedence") or ""):lower()
  return precedence == "list" or precedence == "bulk"
end

return headers
