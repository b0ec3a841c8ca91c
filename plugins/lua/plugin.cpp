// Entry point of the lua plugin: reads [plugin.lua], loads the scripts (refusing, with file and line, one that
// does not compile or fails as it loads: on SIGHUP the previous generation then stays), and registers a hook
// for each tern.hook() they make. Each event loop thread runs the scripts in a Lua state of its own.
#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "lua_runtime.hpp"
#include "tern/sdk/plugin.hpp"

TERN_PLUGIN("lua", "0.1.0", "hook:*") {
  const tern::sdk::ConfigSection& config = registrar.config();
  const std::vector<std::string> paths = config.get_strings("scripts").value_or(std::vector<std::string>{});
  tern::lua::Budget budget;
  const std::int64_t milliseconds = config.get_integer("time_budget_ms").value_or(100);
  if (milliseconds < 1 || milliseconds > 60000) config.fail("time_budget_ms", "must be 1 to 60000 milliseconds");
  budget.time = std::chrono::milliseconds(milliseconds);
  const std::int64_t memory = config.get_integer("memory_budget_kib").value_or(16 * 1024);
  if (memory < 256 || memory > 4 * 1024 * 1024) config.fail("memory_budget_kib", "must be 256 to 4194304 KiB");
  budget.memory_kib = static_cast<std::size_t>(memory);
  if (paths.empty()) return;
  std::vector<tern::lua::Script> scripts;
  for (const std::string& path : paths) {
    std::ifstream file(path, std::ios::binary);
    std::ostringstream text;
    if (!file || !(text << file.rdbuf())) config.fail("scripts", fmt::format("cannot read {}", path));
    scripts.push_back({std::filesystem::path(path).filename().string(), text.str()});
  }
  std::shared_ptr<const tern::lua::ScriptSet> set;
  try {
    set = tern::lua::prepare_scripts(std::move(scripts), budget);
  } catch (const std::exception& error) {
    config.fail("scripts", error.what());
  }
  tern::sdk::Log* log = &registrar.log();
  for (std::size_t index = 0; index < set->hooks.size(); ++index) {
    const tern::lua::HookDeclaration& hook = set->hooks[index];
    registrar.add_hook({fmt::format("lua.{}#{}", set->scripts[hook.script].name, index + 1), hook.stage, hook.priority,
                        [set, index, log](tern::sdk::HookContext& context) {
                          return tern::lua::LuaRuntime::for_thread(set, log).call(index, context);
                        }});
  }
  registrar.log().info(fmt::format("{} Lua script(s), {} hook(s)", set->scripts.size(), set->hooks.size()));
}
