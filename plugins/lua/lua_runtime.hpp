// One Lua state running a ScriptSet's scripts, sandboxed: each script in an environment of its own, without io,
// os (but for the time), debug, ffi, jit, load and dofile. Each hook call runs under the set's budgets: the JIT
// is off, so an instruction-count hook can stop any loop at its deadline, and the same check stops a state
// whose memory grows past the cap. A state is used by one thread only.
#pragma once

#include <memory>
#include <string>

#include "script_set.hpp"
#include "tern/sdk/async_hook.hpp"
#include "tern/sdk/hook.hpp"
#include "tern/sdk/log.hpp"
#include "tern/sdk/verdict.hpp"

struct lua_State;

namespace tern::lua {

struct StateData;

class LuaRuntime {
 public:
  // Runs every script's top level. Throws std::runtime_error naming the script and line on a failure.
  LuaRuntime(std::shared_ptr<const ScriptSet> scripts, sdk::Log* log);
  ~LuaRuntime();
  LuaRuntime(const LuaRuntime&) = delete;
  LuaRuntime& operator=(const LuaRuntime&) = delete;

  // The hooks the scripts registered, in the order they did.
  const std::vector<HookDeclaration>& hooks() const { return hooks_; }
  // Calls hook `index` with the stage's view, in a coroutine of its own: while the hook waits (tern.kv), the
  // loop serves other sessions, and other calls of this state may run. Throws std::runtime_error (the
  // script's error, a broken budget, a bad verdict) with the script and line; the pipeline turns that into a
  // logged defer. The time budget counts the script's running time; waits count against a limit of their own.
  sdk::Task<sdk::Verdict> call(std::size_t index, sdk::HookContext& context, sdk::ServerContext& server);

  // The state of this thread for `scripts`, made at first use.
  static LuaRuntime& for_thread(const std::shared_ptr<const ScriptSet>& scripts, sdk::Log* log);

  // What a script can name: "tern.hook", "tern.reject", ..., "tx.stage", "tx:header", ... (docs/lua-api.md
  // documents each, and a test holds the two together).
  static std::vector<std::string> api_names();

 private:
  std::shared_ptr<const ScriptSet> scripts_;
  sdk::Log* log_;
  std::unique_ptr<StateData> data_;  // what the state's C functions reach through its registry
  lua_State* state_ = nullptr;
  std::vector<HookDeclaration> hooks_;
  std::vector<int> functions_;  // registry references of the hook functions
};

}  // namespace tern::lua
