#include "lua_runtime.hpp"

#include "tern/sdk/text.hpp"

#include <utility>  // before Boost.Asio: Boost 1.74's awaitable.hpp needs it with g++ 12

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <stdexcept>

extern "C" {
#include <lauxlib.h>
#include <lua.h>
#include <luajit.h>
#include <lualib.h>
}

namespace tern::lua {

// What a hook waits for between two resumes: done by LuaRuntime::call, off the loop.
struct Wait {
  enum class Kind { none, kv_get, kv_set, dns, tcp_connect, tcp_send, tcp_receive } kind = Kind::none;
  std::string key;    // the store's key, the name asked for, or the host to connect to
  std::string value;  // the value to store, or the text to send
  std::int64_t ttl = 0;
  sdk::DnsType type = sdk::DnsType::a;
  std::size_t socket = 0;  // tcp_send, tcp_receive: which of the call's connections
  std::uint16_t port = 0;
  sdk::ClientTls tls;
  std::chrono::seconds timeout{10};
};

// One hook call: its coroutine, its view and budget, and what it waits for.
struct CallData {
  lua_State* thread = nullptr;
  sdk::HookContext* context = nullptr;
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
  std::uint64_t calls_made = 0;
  std::chrono::steady_clock::time_point deadline;  // of the script loading
  // The hook call running now. Several calls may be under way, waiting, but one runs at a time on a thread;
  // coroutines a script makes itself run within its call, and its budget.
  CallData* running = nullptr;
  Budget budget;
  sdk::Log* log = nullptr;
  const std::map<std::string, Script>* modules = nullptr;
};

namespace {

constexpr int kCountStep = 1000;  // instructions between two budget checks
constexpr const char* kStateKey = "tern.state";

StateData& data(lua_State* L) {
  lua_getfield(L, LUA_REGISTRYINDEX, kStateKey);
  auto* found = static_cast<StateData*>(lua_touserdata(L, -1));
  lua_pop(L, 1);
  return *found;
}

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

// string.rep makes its whole result at once, before any budget check could run: it is bounded up front.
int bounded_rep(lua_State* L) {
  std::size_t length = 0;
  luaL_checklstring(L, 1, &length);
  const lua_Number count = luaL_checknumber(L, 2);
  std::size_t separator = 0;
  if (lua_gettop(L) >= 3) luaL_checklstring(L, 3, &separator);
  const double octets = static_cast<double>(length + separator) * std::max<lua_Number>(count, 0);
  if (octets > static_cast<double>(data(L).budget.memory_kib) * 1024.0) {
    return luaL_error(L, "string.rep of %f octets exceeds the memory budget", octets);
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

std::optional<sdk::Stage> stage_of(const char* name) {
  return sdk::stage_from_name(name);
}

// tern.hook(stage, function [, {priority = n}])
int api_hook(lua_State* L) {
  StateData& state = data(L);
  const char* stage_name = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  if (!state.loading) return luaL_error(L, "tern.hook is for a script's top level, as it loads");
  const std::optional<sdk::Stage> stage = stage_of(stage_name);
  if (!stage) return luaL_error(L, "no stage \"%s\"", stage_name);
  int priority = 0;
  if (lua_istable(L, 3)) {
    lua_getfield(L, 3, "priority");
    if (!lua_isnil(L, -1)) priority = static_cast<int>(luaL_checkinteger(L, -1));
    lua_pop(L, 1);
  }
  lua_pushvalue(L, 2);
  state.functions->push_back(luaL_ref(L, LUA_REGISTRYINDEX));
  state.hooks->push_back({state.script, *stage, priority});
  return 0;
}

// tern.reject(code, enhanced, text) and friends make verdict tables: {kind = "...", code = ..., ...}.
int make_verdict(lua_State* L, const char* kind) {
  const int given = lua_gettop(L);
  lua_createtable(L, 0, 4);
  lua_pushstring(L, kind);
  lua_setfield(L, -2, "kind");
  const bool coded = std::string_view(kind) == "reject" || std::string_view(kind) == "defer";
  if (coded) {
    if (given >= 1 && !lua_isnil(L, 1)) {
      lua_pushinteger(L, luaL_checkinteger(L, 1));
      lua_setfield(L, -2, "code");
    }
    if (given >= 2 && !lua_isnil(L, 2)) {
      lua_pushstring(L, luaL_checkstring(L, 2));
      lua_setfield(L, -2, "enhanced");
    }
    if (given >= 3 && !lua_isnil(L, 3)) {
      lua_pushstring(L, luaL_checkstring(L, 3));
      lua_setfield(L, -2, "text");
    }
  } else if (std::string_view(kind) == "disconnect") {
    if (given >= 1 && !lua_isnil(L, 1)) {
      lua_pushinteger(L, luaL_checkinteger(L, 1));
      lua_setfield(L, -2, "code");
    }
    if (given >= 2 && !lua_isnil(L, 2)) {
      lua_pushstring(L, luaL_checkstring(L, 2));
      lua_setfield(L, -2, "text");
    }
  } else if (std::string_view(kind) == "quarantine" || std::string_view(kind) == "route") {
    lua_pushstring(L, luaL_checkstring(L, 1));
    lua_setfield(L, -2, std::string_view(kind) == "route" ? "route" : "folder");
  }
  return 1;
}

template <const char* Kind>
int api_verdict(lua_State* L) {
  return make_verdict(L, Kind);
}
constexpr char kNext[] = "next";
constexpr char kAccept[] = "accept";
constexpr char kReject[] = "reject";
constexpr char kDefer[] = "defer";
constexpr char kDisconnect[] = "disconnect";
constexpr char kDiscard[] = "discard";
constexpr char kQuarantine[] = "quarantine";
constexpr char kRoute[] = "route";

int api_log(lua_State* L) {
  StateData& state = data(L);
  const char* text = luaL_checkstring(L, 1);
  lua_Debug where{};
  std::string place;
  if (lua_getstack(L, 1, &where) && lua_getinfo(L, "Sl", &where)) {
    place = fmt::format("{}:{}: ", where.short_src, where.currentline);
  }
  if (state.log != nullptr) state.log->info(fmt::format("lua: {}{}", place, text));
  return 0;
}

// The hook's view, checked for liveness: a `tx` kept past its call is refused.
// The hook call that may wait from here: only its own flow can (a coroutine the script made would yield to
// the script, not to Tern).
CallData& waiting_call(lua_State* L, const char* what) {
  CallData* call = data(L).running;
  if (call == nullptr || call->thread != L) luaL_error(L, "%s works in a hook, outside coroutines it makes", what);
  return *call;
}

sdk::HookContext& live_context(lua_State* L) {
  lua_getfield(L, 1, "_call");
  const auto serial = static_cast<std::uint64_t>(lua_tonumber(L, -1));
  lua_pop(L, 1);
  const CallData* call = data(L).running;
  if (call == nullptr || call->serial != serial) luaL_error(L, "this tx belongs to a hook call that has ended");
  return *call->context;
}

// tern.kv.get(key) and tern.kv.set(key, value, ttl): the coroutine yields, and LuaRuntime::call does the store
// work off the loop before it resumes the hook with the answer.
int kv_get(lua_State* L) {
  CallData& call = waiting_call(L, "tern.kv.get");
  call.wait = {Wait::Kind::kv_get, luaL_checkstring(L, 1), {}, 0};
  return lua_yield(L, 0);
}

// tern.dns(type, name): "a", "aaaa", "mx", "txt" or "ptr" (name: an address).
int dns_query(lua_State* L) {
  CallData& call = waiting_call(L, "tern.dns");
  static const std::pair<const char*, sdk::DnsType> types[] = {{"a", sdk::DnsType::a},
                                                               {"aaaa", sdk::DnsType::aaaa},
                                                               {"mx", sdk::DnsType::mx},
                                                               {"txt", sdk::DnsType::txt},
                                                               {"ptr", sdk::DnsType::ptr}};
  const std::string type = luaL_checkstring(L, 1);
  const char* name = luaL_checkstring(L, 2);
  for (const auto& [word, value] : types) {
    if (type == word) {
      call.wait = {Wait::Kind::dns, name, {}, 0, value};
      return lua_yield(L, 0);
    }
  }
  return luaL_error(L, "tern.dns: no record type \"%s\" (a, aaaa, mx, txt or ptr)", type.c_str());
}

int tcp_send(lua_State* L);
int tcp_receive(lua_State* L);
int tcp_close(lua_State* L);

// tern.tcp(host, port [, {tls = "none" | "implicit", verify = true, timeout = 10}]): a line connection.
int tcp_open(lua_State* L) {
  CallData& call = waiting_call(L, "tern.tcp");
  Wait wait;
  wait.kind = Wait::Kind::tcp_connect;
  wait.key = luaL_checkstring(L, 1);
  const lua_Integer port = luaL_checkinteger(L, 2);
  if (port < 1 || port > 65535) return luaL_error(L, "tern.tcp: port %d is not 1 to 65535", static_cast<int>(port));
  wait.port = static_cast<std::uint16_t>(port);
  if (lua_istable(L, 3)) {
    lua_getfield(L, 3, "tls");
    const std::string tls = lua_isstring(L, -1) ? lua_tostring(L, -1) : "none";
    lua_pop(L, 1);
    if (tls != "none" && tls != "implicit") return luaL_error(L, "tern.tcp: tls is \"none\" or \"implicit\"");
    wait.tls.mode = tls == "implicit" ? sdk::TlsMode::implicit : sdk::TlsMode::none;
    lua_getfield(L, 3, "verify");
    if (lua_isboolean(L, -1)) wait.tls.verify = lua_toboolean(L, -1) != 0;
    lua_pop(L, 1);
    lua_getfield(L, 3, "timeout");
    if (lua_isnumber(L, -1)) wait.timeout = std::chrono::seconds(std::clamp<lua_Integer>(lua_tointeger(L, -1), 1, 30));
    lua_pop(L, 1);
  }
  call.wait = std::move(wait);
  return lua_yield(L, 0);
}

// The connection a method is called on, checked for liveness: its call's, still open.
std::size_t live_socket(lua_State* L, CallData& call) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "_call");
  const auto serial = static_cast<std::uint64_t>(lua_tonumber(L, -1));
  lua_getfield(L, 1, "_socket");
  const auto socket = static_cast<std::size_t>(lua_tointeger(L, -1));
  lua_pop(L, 2);
  if (serial != call.serial || socket >= call.sockets.size()) {
    luaL_error(L, "this connection belongs to a hook call that has ended");
  }
  if (!call.sockets[socket]) luaL_error(L, "this connection is closed");
  return socket;
}

int tcp_send(lua_State* L) {
  CallData& call = waiting_call(L, "send");
  const std::size_t socket = live_socket(L, call);
  std::size_t length = 0;
  const char* text = luaL_checklstring(L, 2, &length);
  call.wait = {};
  call.wait.kind = Wait::Kind::tcp_send;
  call.wait.socket = socket;
  call.wait.value.assign(text, length);
  return lua_yield(L, 0);
}

int tcp_receive(lua_State* L) {
  CallData& call = waiting_call(L, "receive");
  const std::size_t socket = live_socket(L, call);
  call.wait = {};
  call.wait.kind = Wait::Kind::tcp_receive;
  call.wait.socket = socket;
  return lua_yield(L, 0);
}

int tcp_close(lua_State* L) {
  CallData* call = data(L).running;
  if (call == nullptr) return 0;
  lua_getfield(L, 1, "_call");
  const auto serial = static_cast<std::uint64_t>(lua_tonumber(L, -1));
  lua_getfield(L, 1, "_socket");
  const auto socket = static_cast<std::size_t>(lua_tointeger(L, -1));
  lua_pop(L, 2);
  if (serial == call->serial && socket < call->sockets.size()) call->sockets[socket].reset();
  return 0;
}

int kv_set(lua_State* L) {
  CallData& call = waiting_call(L, "tern.kv.set");
  const char* key = luaL_checkstring(L, 1);
  const char* value = luaL_checkstring(L, 2);
  const lua_Integer ttl = luaL_checkinteger(L, 3);
  if (ttl < 1) return luaL_error(L, "tern.kv.set: the time to live must be at least 1 second");
  call.wait = {Wait::Kind::kv_set, key, value, static_cast<std::int64_t>(ttl)};
  return lua_yield(L, 0);
}

std::optional<std::string> header_value(std::string_view message, std::string_view name) {
  std::size_t position = 0;
  while (position < message.size()) {
    const std::size_t end = message.find('\n', position);
    std::string_view line = message.substr(position, end == std::string_view::npos ? message.npos : end - position);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) break;
    if (line.size() > name.size() && line[name.size()] == ':' &&
        std::equal(name.begin(), name.end(), line.begin(),
                   [](char a, char b) { return std::tolower(a) == std::tolower(b); })) {
      std::string value(line.substr(name.size() + 1));
      // Folded continuation lines belong to the value.
      std::size_t next = end == std::string_view::npos ? message.size() : end + 1;
      while (next < message.size() && (message[next] == ' ' || message[next] == '\t')) {
        const std::size_t stop = message.find('\n', next);
        std::string_view more = message.substr(next, stop == std::string_view::npos ? message.npos : stop - next);
        if (!more.empty() && more.back() == '\r') more.remove_suffix(1);
        value += more;
        next = stop == std::string_view::npos ? message.size() : stop + 1;
      }
      const std::size_t first = value.find_first_not_of(" \t");
      return first == std::string::npos ? std::string() : value.substr(first);
    }
    if (end == std::string_view::npos) break;
    position = end + 1;
  }
  return std::nullopt;
}

// Calls `work` and turns a C++ exception (an accessor the stage does not offer) into a Lua error.
template <typename Work>
int guarded(lua_State* L, Work work) {
  std::string failure;
  try {
    return work();
  } catch (const std::exception& error) {
    failure = error.what();
  }
  return luaL_error(L, "%s", failure.c_str());
}

int tx_header(lua_State* L) {
  return guarded(L, [L] {
    sdk::HookContext& context = live_context(L);
    const std::optional<std::string> value = header_value(context.message(), luaL_checkstring(L, 2));
    if (value) {
      lua_pushlstring(L, value->data(), value->size());
    } else {
      lua_pushnil(L);
    }
    return 1;
  });
}

int tx_add_header(lua_State* L) {
  return guarded(L, [L] {
    live_context(L).add_header(luaL_checkstring(L, 2), luaL_checkstring(L, 3));
    return 0;
  });
}

int tx_remove_header(lua_State* L) {
  return guarded(L, [L] {
    lua_pushinteger(L, static_cast<lua_Integer>(live_context(L).remove_header(luaL_checkstring(L, 2))));
    return 1;
  });
}

// Changes a field: removes every field of the name and adds one with the new value on top.
int tx_set_header(lua_State* L) {
  return guarded(L, [L] {
    sdk::HookContext& context = live_context(L);
    const char* name = luaL_checkstring(L, 2);
    const char* value = luaL_checkstring(L, 3);
    context.remove_header(name);
    context.add_header(name, value);
    return 0;
  });
}

int tx_body(lua_State* L) {
  return guarded(L, [L] {
    const std::string_view message = live_context(L).message();
    lua_pushlstring(L, message.data(), message.size());
    return 1;
  });
}

void set_string(lua_State* L, const char* key, std::string_view value) {
  lua_pushlstring(L, value.data(), value.size());
  lua_setfield(L, -2, key);
}

void push_tx(lua_State* L, sdk::HookContext& context, std::uint64_t call) {
  lua_createtable(L, 0, 10);
  lua_pushnumber(L, static_cast<lua_Number>(call));
  lua_setfield(L, -2, "_call");
  set_string(L, "stage", sdk::stage_name(context.stage()));
  const sdk::ClientInfo& client = context.client();
  lua_createtable(L, 0, 7);
  set_string(L, "session", client.session_id);
  set_string(L, "protocol", client.protocol);
  set_string(L, "address", client.address);
  lua_pushinteger(L, client.port);
  lua_setfield(L, -2, "port");
  set_string(L, "helo", client.helo);
  lua_pushboolean(L, client.tls);
  lua_setfield(L, -2, "tls");
  set_string(L, "user", client.user);
  lua_setfield(L, -2, "client");
  if (const sdk::Envelope* envelope = context.envelope()) {
    set_string(L, "sender", envelope->sender);
    lua_createtable(L, static_cast<int>(envelope->recipients.size()), 0);
    for (std::size_t i = 0; i < envelope->recipients.size(); ++i) {
      const std::string& address = envelope->recipients[i].address;
      lua_pushlstring(L, address.data(), address.size());
      lua_rawseti(L, -2, static_cast<int>(i + 1));
    }
    lua_setfield(L, -2, "recipients");
  }
  if (context.stage() == sdk::Stage::rcpt || context.stage() == sdk::Stage::route) {
    set_string(L, "recipient", context.recipient());
  }
  lua_pushcfunction(L, tx_header);
  lua_setfield(L, -2, "header");
  lua_pushcfunction(L, tx_add_header);
  lua_setfield(L, -2, "add_header");
  lua_pushcfunction(L, tx_remove_header);
  lua_setfield(L, -2, "remove_header");
  lua_pushcfunction(L, tx_set_header);
  lua_setfield(L, -2, "set_header");
  lua_pushcfunction(L, tx_body);
  lua_setfield(L, -2, "body");
}

std::string field_string(lua_State* L, int index, const char* key) {
  lua_getfield(L, index, key);
  std::string value = lua_isstring(L, -1) ? lua_tostring(L, -1) : "";
  lua_pop(L, 1);
  return value;
}

// The hook's answer: nil ("next"), a verdict table from tern.*, or a kind's name.
sdk::Verdict verdict_of(lua_State* L, int index) {
  if (lua_isnil(L, index) || lua_isnone(L, index)) return sdk::Verdict::next();
  std::string kind;
  sdk::Verdict verdict;
  if (lua_type(L, index) == LUA_TSTRING) {
    kind = lua_tostring(L, index);
  } else if (lua_istable(L, index)) {
    kind = field_string(L, index, "kind");
    lua_getfield(L, index, "code");
    verdict.code = lua_isnumber(L, -1) ? static_cast<int>(lua_tointeger(L, -1)) : 0;
    lua_pop(L, 1);
    verdict.enhanced = field_string(L, index, "enhanced");
    verdict.text = field_string(L, index, "text");
    verdict.folder = field_string(L, index, "folder");
    verdict.route = field_string(L, index, "route");
  } else {
    throw std::runtime_error(fmt::format("a hook returned a {}, not a verdict", luaL_typename(L, index)));
  }
  static const std::pair<const char*, sdk::VerdictKind> kinds[] = {{"next", sdk::VerdictKind::next},
                                                                   {"accept", sdk::VerdictKind::accept},
                                                                   {"reject", sdk::VerdictKind::reject},
                                                                   {"defer", sdk::VerdictKind::defer},
                                                                   {"disconnect", sdk::VerdictKind::disconnect},
                                                                   {"discard", sdk::VerdictKind::discard},
                                                                   {"quarantine", sdk::VerdictKind::quarantine},
                                                                   {"route", sdk::VerdictKind::route}};
  for (const auto& [name, value] : kinds) {
    if (kind == name) {
      verdict.kind = value;
      return verdict;
    }
  }
  throw std::runtime_error(fmt::format("a hook returned \"{}\", which is not a verdict", kind));
}

// The functions a script may use. Anything not listed (io, os.execute, debug, ffi, jit, load, loadstring,
// dofile, loadfile, require, module, setfenv, getfenv, collectgarbage, newproxy) is simply absent.
constexpr const char* kBaseFunctions[] = {"assert",   "error",    "ipairs",   "next",        "pairs",  "pcall",
                                          "select",   "tonumber", "tostring", "type",        "unpack", "xpcall",
                                          "rawequal", "rawget",   "rawset",   "setmetatable"};
constexpr const char* kLibraries[] = {"string", "table", "math", "coroutine"};

// getmetatable, but not for strings: their metatable is the shared string library, which a script must not
// change for the others.
int safe_getmetatable(lua_State* L) {
  if (lua_type(L, 1) == LUA_TSTRING) return 0;
  if (!lua_getmetatable(L, 1)) return 0;
  return 1;
}

// A table of the same fields as the table at the top of the stack, without sharing it.
void push_copy(lua_State* L, int source) {
  lua_newtable(L);
  lua_pushnil(L);
  while (lua_next(L, source) != 0) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_settable(L, -4);
  }
}

int sandboxed_require(lua_State* L);

// A fresh environment for one script: safe globals, copies of the libraries, `tern`, `require`.
void push_environment(lua_State* L) {
  lua_newtable(L);
  const int environment = lua_gettop(L);
  for (const char* name : kBaseFunctions) {
    lua_getglobal(L, name);
    lua_setfield(L, environment, name);
  }
  lua_pushcfunction(L, safe_getmetatable);
  lua_setfield(L, environment, "getmetatable");
  for (const char* name : kLibraries) {
    lua_getglobal(L, name);
    push_copy(L, lua_gettop(L));
    lua_setfield(L, environment, name);
    lua_pop(L, 1);
  }
  lua_createtable(L, 0, 3);
  lua_getglobal(L, "os");
  for (const char* name : {"time", "clock", "date", "difftime"}) {
    lua_getfield(L, -1, name);
    lua_setfield(L, -3, name);
  }
  lua_pop(L, 1);
  lua_setfield(L, environment, "os");
  lua_getfield(L, LUA_REGISTRYINDEX, "tern.api");
  lua_setfield(L, environment, "tern");
  lua_pushcfunction(L, sandboxed_require);
  lua_setfield(L, environment, "require");
  lua_pushvalue(L, environment);
  lua_setfield(L, environment, "_G");
}

// require(name): a module from the script folders, read when the configuration loaded; run once per state in
// an environment of its own, its result kept for the next require.
int sandboxed_require(lua_State* L) {
  const char* name = luaL_checkstring(L, 1);
  lua_getfield(L, LUA_REGISTRYINDEX, "tern.loaded");
  lua_getfield(L, -1, name);
  if (!lua_isnil(L, -1)) return 1;
  lua_pop(L, 1);
  const StateData& state = data(L);
  const auto found = state.modules->find(name);
  if (found == state.modules->end()) return luaL_error(L, "module '%s' is not in the script folders", name);
  const std::string chunk = "@" + found->second.name;
  if (luaL_loadbuffer(L, found->second.source.data(), found->second.source.size(), chunk.c_str()) != 0) {
    return lua_error(L);
  }
  push_environment(L);
  lua_setfenv(L, -2);
  lua_call(L, 0, 1);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_pushboolean(L, 1);
  }
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, name);
  return 1;
}

void register_api(lua_State* L) {
  const luaL_Reg functions[] = {{"hook", api_hook},
                                {"dns", dns_query},
                                {"tcp", tcp_open},
                                {"log", api_log},
                                {"next", api_verdict<kNext>},
                                {"accept", api_verdict<kAccept>},
                                {"reject", api_verdict<kReject>},
                                {"defer", api_verdict<kDefer>},
                                {"disconnect", api_verdict<kDisconnect>},
                                {"discard", api_verdict<kDiscard>},
                                {"quarantine", api_verdict<kQuarantine>},
                                {"route", api_verdict<kRoute>},
                                {nullptr, nullptr}};
  lua_newtable(L);
  luaL_register(L, nullptr, functions);
  const luaL_Reg kv[] = {{"get", kv_get}, {"set", kv_set}, {nullptr, nullptr}};
  lua_newtable(L);
  luaL_register(L, nullptr, kv);
  lua_setfield(L, -2, "kv");
  lua_setfield(L, LUA_REGISTRYINDEX, "tern.api");
  lua_newtable(L);
  lua_setfield(L, LUA_REGISTRYINDEX, "tern.loaded");
  // The shared string library's rep, bounded (strings' methods reach it too).
  lua_getglobal(L, "string");
  lua_getfield(L, -1, "rep");
  lua_pushcclosure(L, bounded_rep, 1);
  lua_setfield(L, -2, "rep");
  lua_pop(L, 1);
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

namespace {

// How long one hook call may wait on I/O in all, whatever its CPU budget.
constexpr auto kWaitLimit = std::chrono::seconds(30);
constexpr const char* kStoreSpace = "lua";

// A DNS answer as a script gets it: a list of strings (MX: tables {preference = n, host = name}); an empty list
// when the name has no such records; nil and "NXDOMAIN" or the failure's text otherwise.
int push_dns_answer(lua_State* thread, const sdk::DnsAnswer& answer, sdk::DnsType type) {
  if (answer.status == sdk::DnsAnswer::Status::no_domain || answer.status == sdk::DnsAnswer::Status::failed) {
    lua_pushnil(thread);
    lua_pushstring(thread, answer.status == sdk::DnsAnswer::Status::no_domain ? "NXDOMAIN" : answer.error.c_str());
    return 2;
  }
  lua_createtable(thread, static_cast<int>(answer.records.size()), 0);
  for (std::size_t i = 0; i < answer.records.size(); ++i) {
    const sdk::DnsAnswer::Record& record = answer.records[i];
    if (type == sdk::DnsType::mx) {
      lua_createtable(thread, 0, 2);
      lua_pushinteger(thread, record.preference);
      lua_setfield(thread, -2, "preference");
      lua_pushlstring(thread, record.value.data(), record.value.size());
      lua_setfield(thread, -2, "host");
    } else {
      lua_pushlstring(thread, record.value.data(), record.value.size());
    }
    lua_rawseti(thread, -2, static_cast<int>(i + 1));
  }
  return 1;
}

constexpr std::size_t kLineLimit = 64 * 1024;

int push_failure(lua_State* thread, const std::string& why) {
  lua_pushnil(thread);
  lua_pushlstring(thread, why.data(), why.size());
  return 2;
}

// Does a tern.tcp wait and pushes its answers.
sdk::Task<int> finish_tcp(Wait wait, CallData& call, lua_State* thread, sdk::ServerContext& server) {
  if (wait.kind == Wait::Kind::tcp_connect) {
    std::string error;
    std::shared_ptr<sdk::Connection> connection = co_await server.connect(wait.key, wait.port, wait.tls, error);
    if (!connection) co_return push_failure(thread, error);
    connection->set_read_timeout(wait.timeout);
    call.sockets.push_back(std::move(connection));
    lua_createtable(thread, 0, 5);
    lua_pushnumber(thread, static_cast<lua_Number>(call.serial));
    lua_setfield(thread, -2, "_call");
    lua_pushinteger(thread, static_cast<lua_Integer>(call.sockets.size() - 1));
    lua_setfield(thread, -2, "_socket");
    lua_pushcfunction(thread, tcp_send);
    lua_setfield(thread, -2, "send");
    lua_pushcfunction(thread, tcp_receive);
    lua_setfield(thread, -2, "receive");
    lua_pushcfunction(thread, tcp_close);
    lua_setfield(thread, -2, "close");
    co_return 1;
  }
  // The connection stays alive while it is used, even if the script closes it meanwhile from another call.
  const std::shared_ptr<sdk::Connection> connection = call.sockets.at(wait.socket);
  if (wait.kind == Wait::Kind::tcp_send) {
    const bool written = co_await connection->write(wait.value);
    if (!written) co_return push_failure(thread, "closed");
    lua_pushboolean(thread, 1);
    co_return 1;
  }
  std::string line;
  const sdk::ReadStatus status = co_await connection->read_line(line, kLineLimit);
  if (status != sdk::ReadStatus::ok) {
    co_return push_failure(thread, status == sdk::ReadStatus::timeout    ? "timeout"
                                   : status == sdk::ReadStatus::too_long ? "line too long"
                                                                         : "closed");
  }
  const std::string_view text = sdk::strip_line_end(line);
  lua_pushlstring(thread, text.data(), text.size());
  co_return 1;
}

// Does what the hook waits for and pushes its answers onto the hook's coroutine; returns how many.
sdk::Task<int> finish_wait(Wait wait, CallData& call, lua_State* thread, sdk::ServerContext& server) {
  if (wait.kind == Wait::Kind::tcp_connect || wait.kind == Wait::Kind::tcp_send ||
      wait.kind == Wait::Kind::tcp_receive) {
    const int answers = co_await finish_tcp(std::move(wait), call, thread, server);
    co_return answers;
  }
  if (wait.kind == Wait::Kind::dns) {
    const sdk::DnsAnswer answer = co_await server.resolve(wait.key, wait.type);
    co_return push_dns_answer(thread, answer, wait.type);
  }
  const std::int64_t now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::optional<std::string> found;
  const std::optional<std::string> failure = co_await server.attempt([&] {
    sdk::MailStore& store = server.store();
    if (wait.kind == Wait::Kind::kv_get) {
      found = store.state_get(kStoreSpace, wait.key);
    } else {
      // Kept as "<expiry>\t<value>"; an entry past its expiry reads as absent.
      store.state_put({{kStoreSpace, wait.key, fmt::format("{}\t{}", now + wait.ttl, wait.value)}});
    }
  });
  if (failure) {
    lua_pushnil(thread);
    lua_pushstring(thread, failure->c_str());
    co_return 2;
  }
  if (wait.kind == Wait::Kind::kv_set) {
    lua_pushboolean(thread, 1);
    co_return 1;
  }
  const std::size_t tab = found ? found->find('\t') : std::string::npos;
  if (tab == std::string::npos || std::strtoll(found->c_str(), nullptr, 10) <= now) {
    lua_pushnil(thread);
  } else {
    lua_pushlstring(thread, found->data() + tab + 1, found->size() - tab - 1);
  }
  co_return 1;
}

}  // namespace

sdk::Task<sdk::Verdict> LuaRuntime::call(std::size_t index, sdk::HookContext& context, sdk::ServerContext& server) {
  lua_State* L = state_;
  StateData& state = *data_;
  lua_State* thread = lua_newthread(L);
  const int anchor = luaL_ref(L, LUA_REGISTRYINDEX);  // keeps the coroutine alive while it waits
  CallData call;
  call.thread = thread;
  call.context = &context;
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
                                                 std::map<std::string, Script> modules) {
  static std::atomic<std::uint64_t> next_id{1};
  auto set = std::make_shared<ScriptSet>();
  set->id = next_id++;
  set->scripts = std::move(scripts);
  set->modules = std::move(modules);
  set->budget = budget;
  LuaRuntime discovery(set, nullptr);
  set->hooks = discovery.hooks();
  return set;
}

}  // namespace tern::lua
