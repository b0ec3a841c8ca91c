-- Address helpers: require("lib.address")
local address = {}

-- "User@Example.ORG" -> "User", "example.org" (the domain lower-cased); nil for the null sender or no "@".
function address.split(text)
  if text == nil or text == "" then return nil end
  local at = text:match(".*()@")
  if at == nil then return nil end
  return text:sub(1, at - 1), text:sub(at + 1):lower()
end

function address.domain(text)
  local _, domain = address.split(text)
  return domain
end

function address.local_part(text)
  local local_part = address.split(text)
  return local_part
end

-- Whether the address is in `domain` or one of its subdomains.
function address.in_domain(text, domain)
  local own = address.domain(text)
  if own == nil then return false end
  domain = domain:lower()
  return own == domain or own:sub(-(#domain + 1)) == "." .. domain
end

-- The empty reverse path of bounces: <>.
function address.is_null(text)
  return text == nil or text == ""
end

return address
