// What makes a hook wait, and the waiting: tern.dns, tern.tcp and tern.kv yield the hook's coroutine with a Wait;
// LuaRuntime::call hands it to finish_wait, which does it without blocking the loop, then resumes the hook.
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <random>

extern "C" {
#include <lauxlib.h>
}

#include "intake.hpp"
#include "lua_state.hpp"
#include "tern/sdk/address.hpp"

namespace tern::lua {
namespace {

// The hook call that may wait from here: only its own flow can (a coroutine the script made would yield to
// the script, not to Tern).
CallData& waiting_call(lua_State* L, const char* what, bool reaches_out = true) {
  if (reaches_out && data(L).user_script) luaL_error(L, "%s is not available to a user's script", what);
  CallData* call = data(L).running;
  if (call == nullptr || call->thread != L) luaL_error(L, "%s works in a hook, outside coroutines it makes", what);
  return *call;
}

// tern.kv's entries, each with the expiry its ttl gave it.
constexpr const char* kStoreSpace = "lua-kv";
// The vacation replies made: "<user> <sender>", expiring when that sender may get another.
constexpr const char* kVacationSpace = "vacation";

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
  CallData& call = waiting_call(L, "send", false);
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
  CallData& call = waiting_call(L, "receive", false);
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
    const luaL_Reg methods[] = {{"send", tcp_send}, {"receive", tcp_receive}, {"close", tcp_close}, {nullptr, nullptr}};
    luaL_register(thread, nullptr, methods);
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

// tx:vacation's work: unless the sender had a reply within the days asked, the reply goes through the intake step
// (a local sender's `deliver` hooks run), in one commit with the record that the sender had it.
sdk::Task<int> send_vacation(VacationRequest request, CallData& call, lua_State* thread, sdk::ServerContext& server) {
  const std::int64_t now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  static thread_local std::mt19937_64 random{std::random_device{}()};
  const std::string key = vacation_key(request.user, request.sender);
  const std::string hostname(server.hostname());
  bool replied = false;
  sdk::Recipient to{request.sender, "", ""};
  intake::Resolution resolution;
  const std::optional<std::string> unread = co_await server.attempt([&] {
    sdk::MailStore& store = server.store();
    replied = store.state().get(kVacationSpace, key).has_value();
    if (!replied) resolution = intake::resolve(store.directory(), hostname, to);
  });
  if (unread) co_return push_failure(thread, *unread);
  if (replied) {
    const std::string refusal = fmt::format("this sender had a reply within {} day(s)", request.days);
    lua_pushboolean(thread, 0);
    lua_pushlstring(thread, refusal.data(), refusal.size());
    co_return 2;
  }
  // RFC 3834 section 3.1.1: from the null sender, so that nothing answers the answer.
  intake::Incoming incoming;
  incoming.origin = intake::Origin::server;
  incoming.client = call.context->client();
  incoming.client.protocol = "local";
  incoming.envelope.recipients = {to};
  if (!resolution.nobody()) incoming.destinations.add(to, resolution);
  incoming.name = fmt::format("vacation reply from {}", request.user);
  const std::string message_id = fmt::format("<{:016x}.vacation@{}>", random(), sdk::domain_of(request.user));
  incoming.message = vacation_reply(call.context->message(), request, sdk::rfc5322_date(now), message_id);
  incoming.state = {{kVacationSpace, key, "", now + std::int64_t{request.days} * 86400}};
  const intake::Outcome outcome = co_await intake::receive(server, std::move(incoming));
  if (!outcome.accepted()) co_return push_failure(thread, outcome.reply.text);
  server.log().info(fmt::format("vacation reply from <{}> to <{}>", request.user, request.sender));
  lua_pushboolean(thread, 1);
  co_return 1;
}

}  // namespace

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
  if (wait.kind == Wait::Kind::vacation) {
    const int answers = co_await send_vacation(std::move(wait.vacation), call, thread, server);
    co_return answers;
  }
  const std::int64_t now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::optional<std::string> found;
  const std::optional<std::string> failure = co_await server.attempt([&] {
    sdk::State& state = server.store().state();
    if (wait.kind == Wait::Kind::kv_get) {
      found = state.get(kStoreSpace, wait.key);
    } else {
      state.put({{kStoreSpace, wait.key, wait.value, now + wait.ttl}});
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
  if (found) {
    lua_pushlstring(thread, found->data(), found->size());
  } else {
    lua_pushnil(thread);
  }
  co_return 1;
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

int kv_set(lua_State* L) {
  CallData& call = waiting_call(L, "tern.kv.set");
  const char* key = luaL_checkstring(L, 1);
  const char* value = luaL_checkstring(L, 2);
  const lua_Integer ttl = luaL_checkinteger(L, 3);
  if (ttl < 1) return luaL_error(L, "tern.kv.set: the time to live must be at least 1 second");
  call.wait = {Wait::Kind::kv_set, key, value, static_cast<std::int64_t>(ttl)};
  return lua_yield(L, 0);
}

// tx:vacation{text = ..., days = 7, subject = ..., addresses = {...}}: at `deliver`, answers the sender once in
// `days`, unless the message is one that must not be answered. true, or false and why not.
int tx_vacation(lua_State* L) {
  CallData& call = waiting_call(L, "tx:vacation", false);
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "_call");
  const auto serial = static_cast<std::uint64_t>(lua_tonumber(L, -1));
  lua_pop(L, 1);
  if (serial != call.serial) return luaL_error(L, "this tx belongs to a hook call that has ended");
  sdk::HookContext& context = *call.context;
  if (context.stage() != sdk::Stage::deliver) {
    return luaL_error(L, "tx:vacation is not available at stage %s",
                      std::string(sdk::stage_name(context.stage())).c_str());
  }
  luaL_checktype(L, 2, LUA_TTABLE);
  VacationRequest request;
  request.user = std::string(context.recipient());
  request.sender = context.envelope() != nullptr ? context.envelope()->sender : "";
  lua_getfield(L, 2, "text");
  if (!lua_isstring(L, -1)) return luaL_error(L, "tx:vacation: text is required");
  request.text = lua_tostring(L, -1);
  lua_getfield(L, 2, "subject");
  if (lua_isstring(L, -1)) request.subject = lua_tostring(L, -1);
  lua_getfield(L, 2, "days");
  if (!lua_isnil(L, -1)) {
    const lua_Integer days = luaL_checkinteger(L, -1);
    if (days < 1 || days > 365) return luaL_error(L, "tx:vacation: days must be 1 to 365");
    request.days = static_cast<int>(days);
  }
  lua_getfield(L, 2, "addresses");
  if (lua_istable(L, -1)) {
    for (int i = 1;; ++i) {
      lua_rawgeti(L, -1, i);
      if (!lua_isstring(L, -1)) {
        lua_pop(L, 1);
        break;
      }
      request.addresses.emplace_back(lua_tostring(L, -1));
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 4);
  if (request.subject.find_first_of("\r\n") != std::string::npos) {
    return luaL_error(L, "tx:vacation: the subject has a line break");
  }
  const std::optional<std::string> refusal = vacation_refusal(context.message(), request);
  if (refusal) {
    lua_pushboolean(L, 0);
    lua_pushlstring(L, refusal->data(), refusal->size());
    return 2;
  }
  call.wait = {};
  call.wait.kind = Wait::Kind::vacation;
  call.wait.vacation = std::move(request);
  return lua_yield(L, 0);
}

}  // namespace tern::lua
