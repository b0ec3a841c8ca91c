// What the parts of one Lua state share: the state's data (reached through its registry), the hook call under
// way and what it waits for, and what each source file gives the others. Internal to plugins/lua.
#pragma once

#include <utility>  // before Boost.Asio: Boost 1.74's awaitable.hpp needs it with g++ 12

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

extern "C" {
#include <lua.h>
}

#include "script_set.hpp"
#include "tern/sdk/async_hook.hpp"
#include "tern/sdk/log.hpp"
#include "vacation.hpp"

namespace tern::lua {

// What a hook waits for between two resumes: done by LuaRuntime::call, off the loop.
struct Wait {
  enum class Kind { none, kv_get, kv_set, dns, tcp_connect, tcp_send, tcp_receive, vacation } kind = Kind::none;
  std::string key;    // the store's key, the name asked for, or the host to connect to
  std::string value;  // the value to store, or the text to send
  std::int64_t ttl = 0;
  sdk::DnsType type = sdk::DnsType::a;
  std::size_t socket = 0;  // tcp_send, tcp_receive: which of the call's connections
  std::uint16_t port = 0;
  sdk::ClientTls tls;
  std::chrono::seconds timeout{10};
  VacationRequest vacation;
};

// One hook call: its coroutine, its view and budget, and what it waits for.
struct CallData {
  lua_State* thread = nullptr;
  sdk::HookContext* context = nullptr;
  sdk::ServerContext* server = nullptr;
  std::uint64_t serial = 0;  // which call a `tx` belongs to
  std::chrono::steady_clock::time_point deadline;
  Wait wait;
  // tern.tcp connections: closed when the call ends, if the script did not close them.
  std::vector<std::shared_ptr<sdk::Connection>> sockets;
};

// What the C functions of one state need: reached through the registry.
struct StateData {
  std::vector<HookDeclaration>* hooks = nullptr;  // while the scripts load
  std::vector<int>* functions = nullptr;
  std::size_t script = 0;  // the script loading
  bool loading = false;
  bool user_script = false;  // a user's own delivery rules: `deliver` only, nothing that reaches out
  std::uint64_t calls_made = 0;
  std::chrono::steady_clock::time_point deadline;  // of the script loading
  // The hook call running now. Several calls may be under way, waiting, but one runs at a time on a thread;
  // coroutines a script makes itself run within its call, and its budget.
  CallData* running = nullptr;
  Budget budget;
  sdk::Log* log = nullptr;
  const std::map<std::string, Script>* modules = nullptr;
};

inline constexpr const char* kStateKey = "tern.state";
// How long one hook call may wait on I/O in all, whatever its time budget.
inline constexpr auto kWaitLimit = std::chrono::seconds(30);

inline StateData& data(lua_State* L) {
  lua_getfield(L, LUA_REGISTRYINDEX, kStateKey);
  auto* found = static_cast<StateData*>(lua_touserdata(L, -1));
  lua_pop(L, 1);
  return *found;
}

// lua_api.cpp: the sandbox and the API a script sees.
void register_api(lua_State* L);      // the registry's `tern` table, and the bounded string.rep
void push_environment(lua_State* L);  // a fresh environment for one script
void push_tx(lua_State* L, sdk::HookContext& context, std::uint64_t call);
sdk::Verdict verdict_of(lua_State* L, int index);  // throws std::runtime_error for a value that is no verdict

// lua_waits.cpp: the functions that make a hook wait (tern.dns, tern.tcp, tern.kv), and the waiting itself.
int kv_get(lua_State* L);
int kv_set(lua_State* L);
int dns_query(lua_State* L);
int tcp_open(lua_State* L);
int tx_vacation(lua_State* L);
// Does what the hook waits for and pushes its answers onto the hook's coroutine; returns how many.
sdk::Task<int> finish_wait(Wait wait, CallData& call, lua_State* thread, sdk::ServerContext& server);

}  // namespace tern::lua
