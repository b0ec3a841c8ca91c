// Entry point of the lua plugin: reads [plugin.lua], loads the scripts (refusing, with file and line, one that
// does not compile or fails as it loads: on SIGHUP the previous generation then stays), and registers a hook
// for each tern.hook() they make. Each event loop thread runs the scripts in a Lua state of its own.
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "lua_runtime.hpp"
#include "script_command.hpp"
#include "tern/sdk/plugin.hpp"
#include "user_scripts.hpp"

namespace {

// Bounds on what the folders of scripts may hold for require: they are read whole at every load.
constexpr std::size_t kMaxModules = 1000;
constexpr std::uintmax_t kMaxModuleSize = 1024 * 1024;
constexpr int kUserScriptPriority = 1000;

// One tern.hook() of the scripts, run in this thread's Lua state.
class ScriptHook final : public tern::sdk::AsyncHook {
 public:
  ScriptHook(std::shared_ptr<const tern::lua::ScriptSet> scripts, std::size_t index, tern::sdk::Log* log)
      : scripts_(std::move(scripts)), index_(index), log_(log) {}
  tern::sdk::Task<tern::sdk::Verdict> call(tern::sdk::HookContext& context,
                                           tern::sdk::ServerContext& server) const override {
    return tern::lua::LuaRuntime::for_thread(scripts_, log_).call(index_, context, server);
  }

 private:
  std::shared_ptr<const tern::lua::ScriptSet> scripts_;
  std::size_t index_;
  tern::sdk::Log* log_;
};

}  // namespace

TERN_PLUGIN("lua", "0.1.0", "hook:*,command:script") {
  const tern::sdk::ConfigSection& config = registrar.config();
  const std::vector<std::string> paths = config.get_strings("scripts").value_or(std::vector<std::string>{});
  tern::lua::Budget budget;
  const std::int64_t milliseconds = config.integer("time_budget_ms", 100, 1, 60000, "milliseconds");
  budget.time = std::chrono::milliseconds(milliseconds);
  const std::int64_t memory = config.integer("memory_budget_kib", 16 * 1024, 256, 4 * 1024 * 1024, "KiB");
  budget.memory_kib = static_cast<std::size_t>(memory);
  registrar.add_command(std::make_shared<tern::lua::ScriptCommand>());
  if (config.get_bool("user_scripts").value_or(false)) {
    // Within the server's own scripts' budgets: a user's script is the less trusted of the two.
    tern::lua::Budget user_budget;
    user_budget.time =
        std::chrono::milliseconds(config.integer("user_time_budget_ms", std::min<std::int64_t>(20, milliseconds), 1,
                                                 milliseconds, "milliseconds (time_budget_ms at most)"));
    user_budget.memory_kib =
        static_cast<std::size_t>(config.integer("user_memory_budget_kib", std::min<std::int64_t>(4096, memory), 256,
                                                memory, "KiB (memory_budget_kib at most)"));
    // After the server's own deliver hooks: what the administrator files (spam into Junk) stays filed.
    registrar.add_hook({"lua.user-scripts",
                        tern::sdk::Stage::deliver,
                        kUserScriptPriority,
                        {},
                        std::make_shared<tern::lua::UserScriptHook>(user_budget, &registrar.log())});
  }
  if (paths.empty()) return;
  std::vector<tern::lua::Script> scripts;
  for (const std::string& path : paths) {
    std::ifstream file(path, std::ios::binary);
    std::ostringstream text;
    if (!file || !(text << file.rdbuf())) config.fail("scripts", fmt::format("cannot read {}", path));
    scripts.push_back({std::filesystem::path(path).filename().string(), text.str()});
  }
  // What `require` may load: the .lua files under the scripts' folders and the configured library folders.
  std::vector<std::filesystem::path> folders;
  for (const std::string& path : paths) folders.push_back(std::filesystem::path(path).parent_path());
  for (const std::string& folder : config.get_strings("library").value_or(std::vector<std::string>{})) {
    if (!std::filesystem::is_directory(folder)) config.fail("library", fmt::format("{} is not a folder", folder));
    folders.emplace_back(folder);
  }
  std::map<std::string, tern::lua::Script> modules;
  std::error_code error;
  for (const std::filesystem::path& folder : folders) {
    const std::filesystem::path root = folder.empty() ? std::filesystem::path(".") : folder;
    std::size_t files = 0;
    for (auto it = std::filesystem::recursive_directory_iterator(root, error);
         !error && it != std::filesystem::recursive_directory_iterator(); it.increment(error)) {
      if (!it->is_regular_file() || it->path().extension() != ".lua") continue;
      if (++files > kMaxModules || it->file_size() > kMaxModuleSize) {
        config.fail("scripts", fmt::format("{} holds too many or too large .lua files for require", root.string()));
      }
      std::string name = std::filesystem::relative(it->path(), root).replace_extension().generic_string();
      std::replace(name.begin(), name.end(), '/', '.');
      std::ifstream file(it->path(), std::ios::binary);
      std::ostringstream text;
      text << file.rdbuf();
      modules.emplace(name, tern::lua::Script{it->path().filename().string(), text.str()});
    }
  }
  std::shared_ptr<const tern::lua::ScriptSet> set;
  try {
    set = tern::lua::prepare_scripts(std::move(scripts), budget, std::move(modules));
  } catch (const std::exception& error) {
    config.fail("scripts", error.what());
  }
  tern::sdk::Log* log = &registrar.log();
  for (std::size_t index = 0; index < set->hooks.size(); ++index) {
    const tern::lua::HookDeclaration& hook = set->hooks[index];
    tern::sdk::HookSpec spec{fmt::format("lua.{}#{}", set->scripts[hook.script].name, index + 1),
                             hook.stage,
                             hook.priority,
                             {},
                             std::make_shared<ScriptHook>(set, index, log)};
    registrar.add_hook(std::move(spec));
  }
  registrar.log().info(fmt::format("{} Lua script(s), {} hook(s)", set->scripts.size(), set->hooks.size()));
}
