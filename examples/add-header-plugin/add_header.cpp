// An example plugin: adds one header field to every message at the `message` stage.
//
//   [plugin.add-header]
//   name  = "X-Example"        # default "X-Tern-Example"
//   value = "seen by Tern"     # default "yes"
#include <string>

#include "tern/sdk/plugin.hpp"

TERN_PLUGIN("add-header", "1.0.0", "hook:message") {
  const auto& config = registrar.config();
  std::string name = config.get_string("name").value_or("X-Tern-Example");
  std::string value = config.get_string("value").value_or("yes");
  if (name.empty() || name.find_first_of(": \t\r\n") != std::string::npos) {
    config.error("name", "must be a header field name without spaces or colons");
  }
  registrar.add_hook({"add-header.tag", tern::sdk::Stage::message, 0, [name, value](tern::sdk::HookContext& context) {
                        context.add_header(name, value);
                        return tern::sdk::Verdict::next();
                      }});
  registrar.log().info("adding " + name + ": " + value + " to every message");
}
