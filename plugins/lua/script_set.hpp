// The Lua scripts of one configuration generation: their sources, their budgets, and the hooks they register.
// Immutable once built; each event loop thread runs them in a Lua state of its own (lua_runtime.hpp).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tern/sdk/stage.hpp"

namespace tern::lua {

struct Script {
  std::string name;    // the file name, as error messages and logs show it
  std::string source;  // its text
};

// One tern.hook() call of a script, in the order the scripts made them.
struct HookDeclaration {
  std::size_t script = 0;  // index into ScriptSet::scripts
  sdk::Stage stage = sdk::Stage::connect;
  int priority = 0;
};

struct Budget {
  std::chrono::milliseconds time{100};  // per hook call
  std::size_t memory_kib = 16 * 1024;   // the whole state's memory while a hook runs
};

struct ScriptSet {
  std::uint64_t id = 0;  // unique per generation: a thread's state for an older set is never reused
  std::vector<Script> scripts;
  // What `require` finds, read when the configuration loads (a hook never touches the disk): name ("lib.address")
  // to the module's file name and text.
  std::map<std::string, Script> modules;
  Budget budget;
  std::vector<HookDeclaration> hooks;
  // A user's own delivery rules (uploaded with `tern script`): they may hook `deliver` only, and have no
  // tern.dns, tern.tcp or tern.kv: what they decide concerns their own mailbox alone.
  bool user_script = false;
};

// Reads nothing: compiles and runs the scripts' top levels once, in a state of its own, to learn their hooks.
// Throws std::runtime_error naming the script and line when one does not compile or fails as it loads.
std::shared_ptr<const ScriptSet> prepare_scripts(std::vector<Script> scripts, Budget budget,
                                                 std::map<std::string, Script> modules = {}, bool user_script = false);

}  // namespace tern::lua
