// The sandbox a script runs in and the API it sees: `tern` (hooks, verdicts, log), `tx` (the hook's view of the
// session), and `require` from the script folders. The functions that wait live in lua_waits.cpp.
#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <stdexcept>

extern "C" {
#include <lauxlib.h>
#include <lualib.h>
}

#include "lua_state.hpp"
#include "mime_message.hpp"
#include "tern/sdk/header.hpp"
#include "tern/sdk/text.hpp"

namespace tern::lua {
namespace {

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
  if (state.user_script && *stage != sdk::Stage::deliver) {
    return luaL_error(L, "a user's script hooks \"deliver\" only, not \"%s\"", stage_name);
  }
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
  // In a hook, the session's log: its lines carry the session id, as the rest of the session's do.
  sdk::Log* log = state.running != nullptr ? &state.running->server->log() : state.log;
  if (log != nullptr) log->info(fmt::format("lua: {}{}", place, text));
  return 0;
}

// tern.count(name [, delta]): adds to the server's counter lua_<name>, which the metrics listener shows.
int api_count(lua_State* L) {
  const StateData& state = data(L);
  const std::string name = luaL_checkstring(L, 1);
  const lua_Integer delta = luaL_optinteger(L, 2, 1);
  if (state.user_script) return luaL_error(L, "tern.count is not available to a user's script");
  if (state.running == nullptr) return luaL_error(L, "tern.count works in a hook");
  if (name.empty() || name.size() > 60 ||
      name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") != std::string::npos) {
    return luaL_error(L, "tern.count: \"%s\" is not a counter name (a-z, 0-9 and _, at most 60)", name.c_str());
  }
  if (delta < 1) return luaL_error(L, "tern.count: the count must be positive");
  state.running->server->count("lua_" + name, static_cast<std::int64_t>(delta));
  return 0;
}

// The hook's view, checked for liveness: a `tx` kept past its call is refused.
sdk::HookContext& live_context(lua_State* L) {
  lua_getfield(L, 1, "_call");
  const auto serial = static_cast<std::uint64_t>(lua_tonumber(L, -1));
  lua_pop(L, 1);
  const CallData* call = data(L).running;
  if (call == nullptr || call->serial != serial) luaL_error(L, "this tx belongs to a hook call that has ended");
  return *call->context;
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
    const std::optional<std::string> value = sdk::header_value(context.message(), luaL_checkstring(L, 2));
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

void set_string(lua_State* L, const char* key, std::string_view value) {
  lua_pushlstring(L, value.data(), value.size());
  lua_setfield(L, -2, key);
}

// part:content(): the part's body with its transfer encoding undone. The part's table carries its call and its
// index among the message's leaves, so a part kept past its call is refused as its tx would be.
int part_content(lua_State* L) {
  return guarded(L, [L] {
    const std::string_view message = live_context(L).message();
    lua_getfield(L, 1, "_index");
    const auto index = static_cast<std::size_t>(lua_tointeger(L, -1));
    lua_pop(L, 1);
    const mime::MimeMessage parsed(message);
    const std::vector<mime::MimeMessage::Section> leaves = parsed.leaves();
    if (index >= leaves.size()) throw std::logic_error("this part is not in the message any more");
    const mime::MimeMessage::Section& leaf = leaves[index];
    const std::string decoded = mime::MimeMessage::decode(leaf.encoding, leaf.text).value_or(std::string(leaf.text));
    lua_pushlstring(L, decoded.data(), decoded.size());
    return 1;
  });
}

// tx:parts(): the message's leaf parts (neither multipart nor message/rfc822), in order.
int tx_parts(lua_State* L) {
  return guarded(L, [L] {
    const std::string_view message = live_context(L).message();
    lua_getfield(L, 1, "_call");
    const lua_Number call = lua_tonumber(L, -1);
    lua_pop(L, 1);
    const mime::MimeMessage parsed(message);
    const std::vector<mime::MimeMessage::Section> leaves = parsed.leaves();
    lua_createtable(L, static_cast<int>(leaves.size()), 0);
    for (std::size_t i = 0; i < leaves.size(); ++i) {
      const mime::MimeMessage::Section& leaf = leaves[i];
      lua_createtable(L, 0, 8);
      set_string(L, "type", sdk::lower_ascii(leaf.type));
      if (!leaf.name.empty()) set_string(L, "name", leaf.name);
      if (!leaf.disposition.empty()) set_string(L, "disposition", sdk::lower_ascii(leaf.disposition));
      if (!leaf.charset.empty()) set_string(L, "charset", sdk::lower_ascii(leaf.charset));
      const std::optional<std::string> decoded = mime::MimeMessage::decode(leaf.encoding, leaf.text);
      lua_pushinteger(L, static_cast<lua_Integer>(decoded ? decoded->size() : leaf.text.size()));
      lua_setfield(L, -2, "size");
      lua_pushnumber(L, call);
      lua_setfield(L, -2, "_call");
      lua_pushinteger(L, static_cast<lua_Integer>(i));
      lua_setfield(L, -2, "_index");
      lua_pushcfunction(L, part_content);
      lua_setfield(L, -2, "content");
      lua_rawseti(L, -2, static_cast<int>(i + 1));
    }
    return 1;
  });
}

int tx_set_sender(lua_State* L) {
  return guarded(L, [L] {
    live_context(L).set_sender(luaL_checkstring(L, 2));
    return 0;
  });
}

int tx_add_recipient(lua_State* L) {
  return guarded(L, [L] {
    live_context(L).add_recipient(luaL_checkstring(L, 2));
    return 0;
  });
}

int tx_remove_recipient(lua_State* L) {
  return guarded(L, [L] {
    lua_pushboolean(L, live_context(L).remove_recipient(luaL_checkstring(L, 2)) ? 1 : 0);
    return 1;
  });
}

int tx_add_flag(lua_State* L) {
  return guarded(L, [L] {
    live_context(L).add_flag(luaL_checkstring(L, 2));
    return 0;
  });
}

int tx_redirect(lua_State* L) {
  return guarded(L, [L] {
    live_context(L).redirect(luaL_checkstring(L, 2));
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

std::string field_string(lua_State* L, int index, const char* key) {
  lua_getfield(L, index, key);
  std::string value = lua_isstring(L, -1) ? lua_tostring(L, -1) : "";
  lua_pop(L, 1);
  return value;
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

}  // namespace

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
  if (context.stage() == sdk::Stage::rcpt || context.stage() == sdk::Stage::route ||
      context.stage() == sdk::Stage::deliver) {
    set_string(L, "recipient", context.recipient());
  }
  const luaL_Reg methods[] = {{"header", tx_header},
                              {"add_header", tx_add_header},
                              {"remove_header", tx_remove_header},
                              {"set_header", tx_set_header},
                              {"body", tx_body},
                              {"parts", tx_parts},
                              {"set_sender", tx_set_sender},
                              {"add_recipient", tx_add_recipient},
                              {"remove_recipient", tx_remove_recipient},
                              {"add_flag", tx_add_flag},
                              {"redirect", tx_redirect},
                              {"vacation", tx_vacation},
                              {nullptr, nullptr}};
  luaL_register(L, nullptr, methods);
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

void register_api(lua_State* L) {
  const luaL_Reg functions[] = {{"hook", api_hook},
                                {"dns", dns_query},
                                {"tcp", tcp_open},
                                {"log", api_log},
                                {"count", api_count},
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

}  // namespace tern::lua
