-- A first Tern script, step by step. List it in the config and reload (kill -HUP the server):
--
--   [plugin.lua]
--   scripts = ["/etc/tern/scripts/tutorial.lua"]
--
-- Step 1. A script registers hooks: a function Tern calls at one stage of a message's path (docs/lua-api.md
-- lists the stages). The function gets `tx`, what the stage knows. Returning nothing lets the message go on.
tern.hook("helo", function(tx)
  tern.log("a client said hello as " .. tx.client.helo)
end)

-- Step 2. A hook decides by returning a verdict. Here, a recipient no one reads is refused with our own
-- reply; the sending server shows it to its user.
local retired = {["old-sales@example.org"] = true}

tern.hook("rcpt", function(tx)
  if retired[tx.recipient:lower()] then
    return tern.reject(550, "5.1.1", "This address was retired; write to sales@example.org")
  end
end)

-- Step 3. Libraries: require finds modules in the folders of your scripts (copy Tern's scripts/lib there).
-- local address = require("lib.address")

-- Step 4. At `message` a hook can read the header and add to it, and file the message into a folder.
tern.hook("message", function(tx)
  local subject = tx:header("Subject") or ""
  if subject:lower():find("invoice", 1, true) then
    tx:add_header("X-Tutorial", "looks like an invoice")
    return tern.quarantine("Invoices")
  end
end)

-- Step 5. Mistakes do not hurt the server: an error, an endless loop or a huge allocation only makes the
-- client retry later (451 4.3.0), and the log names this file and line.
