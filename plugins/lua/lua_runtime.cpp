#include "lua_runtime.hpp"

#include <fmt/format.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

extern "C" {
#include <lauxlib.h>
#include <luajit.h>
#include <lualib.h>
}

#include "lua_state.hpp"

namespace tern::lua {
namespace {

constexpr int kCountStep = 1000;  // instructions between two budget checks

// Stops the hook with the budget it broke, and where the script was ("rules.lua:12: "): an error raised from a
// count hook carries no position itself. The message is made before the error unwinds anything.
[[noreturn]] void budget_broken(lua_State* L, const char* what, int limit, const char* unit) {
  char message[256];
  lua_Debug where{};
  if (lua_getstack(L, 0, &where) && lua_getinfo(L, "Sl", &where) && where.currentline > 0) {
    std::snprintf(message, sizeof message, "%s:%d: %s budget of %d %s exceeded", where.short_src, where.currentline,
                  what, limit, unit);
  } else {
    std::snprintf(message, sizeof message, "%s budget of %d %s exceeded", what, limit, unit);
  }
  lua_pushstring(L, message);
  lua_error(L);
  std::abort();  // lua_error does not return
}

void budget_check(lua_State* L, lua_Debug*) {
  StateData& state = data(L);
  if (state.running == nullptr && !state.loading) return;
  const auto deadline = state.running != nullptr ? state.running->deadline : state.deadline;
  if (std::chrono::steady_clock::now() > deadline) {
    budget_broken(L, "time", static_cast<int>(state.budget.time.count()), "ms");
  }
  if (static_cast<std::size_t>(lua_gc(L, LUA_GCCOUNT, 0)) > state.budget.memory_kib) {
    lua_gc(L, LUA_GCCOLLECT, 0);
    if (static_cast<std::size_t>(lua_gc(L, LUA_GCCOUNT, 0)) > state.budget.memory_kib) {
      budget_broken(L, "memory", static_cast<int>(state.budget.memory_kib), "KiB");
    }
  }
}

}  // namespace

LuaRuntime::LuaRuntime(std::shared_ptr<const ScriptSet> scripts, sdk::Log* log)
    : scripts_(std::move(scripts)), log_(log) {
  state_ = luaL_newstate();
  if (state_ == nullptr) throw std::runtime_error("cannot make a Lua state");
  lua_State* L = state_;
  luaL_openlibs(L);
  // The interpreter only: instruction-count hooks do not run inside JIT-compiled traces, and the budget needs
  // them. After the libraries: opening `jit` turns the compiler on.
  luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
  data_ = std::make_unique<StateData>();
  StateData* state = data_.get();
  lua_pushlightuserdata(L, state);
  lua_setfield(L, LUA_REGISTRYINDEX, kStateKey);
  state->budget = scripts_->budget;
  state->modules = &scripts_->modules;
  state->log = log_;
  state->hooks = &hooks_;
  state->functions = &functions_;
  state->user_script = scripts_->user_script;
  register_api(L);
  // One count hook for the state's life: LuaJIT's hooks are the whole state's, coroutines included, and the
  // check itself finds the deadline of the call (or the load) it interrupts.
  lua_sethook(L, budget_check, LUA_MASKCOUNT, kCountStep);
  state->loading = true;
  for (std::size_t index = 0; index < scripts_->scripts.size(); ++index) {
    const Script& script = scripts_->scripts[index];
    state->script = index;
    const std::string chunk = "@" + script.name;
    if (luaL_loadbuffer(L, script.source.data(), script.source.size(), chunk.c_str()) != 0) {
      std::string error = lua_tostring(L, -1);
      lua_close(L);
      state_ = nullptr;
      throw std::runtime_error(error);
    }
    push_environment(L);
    lua_setfenv(L, -2);
    state->deadline = std::chrono::steady_clock::now() + state->budget.time;
    const int status = lua_pcall(L, 0, 0, 0);
    if (status != 0) {
      std::string error = lua_isstring(L, -1) ? lua_tostring(L, -1) : "error while loading";
      lua_close(L);
      state_ = nullptr;
      throw std::runtime_error(error);
    }
  }
  state->loading = false;
  if (!scripts_->hooks.empty() && scripts_->hooks.size() != hooks_.size()) {
    lua_close(L);
    state_ = nullptr;
    throw std::runtime_error("the scripts registered other hooks than when they were first loaded");
  }
}

LuaRuntime::~LuaRuntime() {
  if (state_ != nullptr) lua_close(state_);
}

sdk::Task<sdk::Verdict> LuaRuntime::call(std::size_t index, sdk::HookContext& context, sdk::ServerContext& server) {
  lua_State* L = state_;
  StateData& state = *data_;
  lua_State* thread = lua_newthread(L);
  const int anchor = luaL_ref(L, LUA_REGISTRYINDEX);  // keeps the coroutine alive while it waits
  CallData call;
  call.thread = thread;
  call.context = &context;
  call.server = &server;
  call.serial = ++state.calls_made;
  lua_rawgeti(thread, LUA_REGISTRYINDEX, functions_.at(index));
  push_tx(thread, context, call.serial);
  int arguments = 1;
  std::chrono::steady_clock::duration left = state.budget.time;
  const auto give_up = std::chrono::steady_clock::now() + kWaitLimit;
  std::optional<std::string> failure;
  sdk::Verdict verdict;
  while (true) {
    const auto started = std::chrono::steady_clock::now();
    call.deadline = started + left;
    state.running = &call;
    const int status = lua_resume(thread, arguments);
    state.running = nullptr;
    left -= std::chrono::steady_clock::now() - started;
    if (status == LUA_YIELD) {
      if (call.wait.kind == Wait::Kind::none) {
        failure = scripts_->scripts.at(hooks_.at(index).script).name +
                  ": a hook yielded, which only tern's waiting "
                  "functions may do";
        break;
      }
      if (std::chrono::steady_clock::now() > give_up) {
        failure = fmt::format("{}: waited longer than {} s in all", scripts_->scripts.at(hooks_.at(index).script).name,
                              kWaitLimit.count());
        break;
      }
      Wait wait = std::move(call.wait);
      call.wait = {};
      const int answers = co_await finish_wait(std::move(wait), call, thread, server);
      arguments = answers;
      continue;
    }
    if (status == 0) {
      try {
        verdict = verdict_of(thread, -1);
      } catch (const std::runtime_error& error) {
        failure = fmt::format("{}: {}", scripts_->scripts.at(hooks_.at(index).script).name, error.what());
      }
    } else {
      failure = lua_isstring(thread, -1) ? lua_tostring(thread, -1) : "error in a hook";
    }
    break;
  }
  luaL_unref(L, LUA_REGISTRYINDEX, anchor);
  if (failure) {
    lua_gc(L, LUA_GCCOLLECT, 0);  // a broken memory budget leaves garbage behind
    throw std::runtime_error(*failure);
  }
  co_return verdict;
}

std::vector<std::string> LuaRuntime::api_names() {
  lua_State* L = luaL_newstate();
  StateData state;
  lua_pushlightuserdata(L, &state);
  lua_setfield(L, LUA_REGISTRYINDEX, kStateKey);
  luaL_openlibs(L);
  register_api(L);
  std::vector<std::string> names;
  lua_getfield(L, LUA_REGISTRYINDEX, "tern.api");
  lua_pushnil(L);
  while (lua_next(L, -2) != 0) {
    const std::string name = std::string("tern.") + lua_tostring(L, -2);
    if (lua_istable(L, -1)) {
      lua_pushnil(L);
      while (lua_next(L, -2) != 0) {
        names.push_back(name + "." + lua_tostring(L, -2));
        lua_pop(L, 1);
      }
    } else {
      names.push_back(name);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  // A tx as every stage could fill it: fields with '.', methods (functions) with ':'.
  class Everything final : public sdk::HookContext {
   public:
    sdk::Stage stage() const override { return sdk::Stage::rcpt; }
    const sdk::ClientInfo& client() const override { return client_; }
    const sdk::Envelope* envelope() const override { return &envelope_; }
    std::string_view recipient() const override { return {}; }
    std::string_view message() const override { return {}; }
    void add_header(std::string_view, std::string_view) override {}

   private:
    sdk::ClientInfo client_;
    sdk::Envelope envelope_;
  } context;
  push_tx(L, context, 0);
  lua_pushnil(L);
  while (lua_next(L, -2) != 0) {
    const std::string key = lua_tostring(L, -2);
    if (key.front() != '_') names.push_back((lua_isfunction(L, -1) ? "tx:" : "tx.") + key);
    lua_pop(L, 1);
  }
  lua_close(L);
  std::sort(names.begin(), names.end());
  return names;
}

LuaRuntime& LuaRuntime::for_thread(const std::shared_ptr<const ScriptSet>& scripts, sdk::Log* log) {
  struct Entry {
    std::uint64_t id;
    std::weak_ptr<const ScriptSet> scripts;
    std::unique_ptr<LuaRuntime> runtime;
  };
  thread_local std::vector<Entry> states;
  for (Entry& entry : states) {
    if (entry.id == scripts->id) return *entry.runtime;
  }
  // States of generations that are gone are closed as new ones come.
  std::erase_if(states, [](const Entry& entry) { return entry.scripts.expired(); });
  states.push_back({scripts->id, scripts, std::make_unique<LuaRuntime>(scripts, log)});
  return *states.back().runtime;
}

std::shared_ptr<const ScriptSet> prepare_scripts(std::vector<Script> scripts, Budget budget,
                                                 std::map<std::string, Script> modules, bool user_script) {
  static std::atomic<std::uint64_t> next_id{1};
  auto set = std::make_shared<ScriptSet>();
  set->id = next_id++;
  set->scripts = std::move(scripts);
  set->modules = std::move(modules);
  set->budget = budget;
  set->user_script = user_script;
  LuaRuntime discovery(set, nullptr);
  set->hooks = discovery.hooks();
  return set;
}

}  // namespace tern::lua
