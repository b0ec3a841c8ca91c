#include <utility>  // before Boost.Asio: Boost 1.74's awaitable.hpp needs it with g++ 12

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <exception>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>

#include "lua_runtime.hpp"
#include "test_server.hpp"

using tern::lua::Budget;
using tern::lua::LuaRuntime;
using tern::lua::prepare_scripts;
using tern::sdk::Stage;
using tern::sdk::VerdictKind;

namespace {

class FakeContext final : public tern::sdk::HookContext {
 public:
  explicit FakeContext(Stage stage) : stage_(stage) {
    client_.address = "192.0.2.7";
    client_.helo = "client.test";
    envelope_.sender = "carol@remote.test";
    envelope_.recipients.push_back({"alice@example.test", "", ""});
  }
  Stage stage() const override { return stage_; }
  const tern::sdk::ClientInfo& client() const override { return client_; }
  const tern::sdk::Envelope* envelope() const override { return &envelope_; }
  std::string_view recipient() const override { return "bob@example.test"; }
  std::string_view message() const override {
    if (stage_ != Stage::message) throw std::logic_error("message() is not available at stage rcpt");
    return "Subject: hello\r\n there\r\nX-Spam-Score: 7.5\r\n\r\nbody\r\n";
  }
  void add_header(std::string_view name, std::string_view value) override {
    added += std::string(name) + ": " + std::string(value) + "\r\n";
  }
  std::size_t remove_header(std::string_view name) override {
    removed.emplace_back(name);
    return 1;
  }
  std::vector<std::string> removed;
  std::string added;

 private:
  Stage stage_;
  tern::sdk::ClientInfo client_;
  tern::sdk::Envelope envelope_;
};

// Runs one hook call to its end on a loop of its own; rethrows its failure.
tern::sdk::Verdict call(LuaRuntime& runtime, std::size_t index, tern::sdk::HookContext& context) {
  tern::testing::TestServer server;
  return tern::testing::run_to_end(runtime.call(index, context, server));
}

tern::sdk::Verdict run(const std::string& source, Stage stage = Stage::rcpt, Budget budget = {}) {
  auto set = prepare_scripts({{"test.lua", source}}, budget);
  LuaRuntime runtime(set, nullptr);
  FakeContext context(stage);
  return call(runtime, 0, context);
}

std::string failure(const std::string& source, Stage stage = Stage::rcpt, Budget budget = {}) {
  try {
    run(source, stage, budget);
  } catch (const std::runtime_error& error) {
    return error.what();
  }
  return "(no error)";
}

Budget small_budget() {
  Budget budget;
  budget.time = std::chrono::milliseconds(50);
  budget.memory_kib = 4096;
  return budget;
}

}  // namespace

TEST_CASE("A hook answers with its own reply, and reads what its stage knows") {
  const auto verdict = run(R"(
    tern.hook("rcpt", function(tx)
      if tx.recipient == "bob@example.test" and tx.sender == "carol@remote.test" and tx.client.helo == "client.test"
         and tx.recipients[1] == "alice@example.test" then
        return tern.reject(553, "5.7.1", "Bob takes no mail from " .. tx.client.address)
      end
    end)
  )");
  CHECK(verdict.kind == VerdictKind::reject);
  CHECK(verdict.code == 553);
  CHECK(verdict.enhanced == "5.7.1");
  CHECK(verdict.text == "Bob takes no mail from 192.0.2.7");
}

TEST_CASE("At message a hook reads header fields, unfolded, and adds its own") {
  auto set = prepare_scripts({{"tag.lua", R"(
    tern.hook("message", function(tx)
      if tonumber(tx:header("x-spam-score")) > 5 then tx:add_header("X-Tagged", tx:header("Subject")) end
      return tern.quarantine("Junk")
    end)
  )"}},
                             {});
  LuaRuntime runtime(set, nullptr);
  FakeContext context(Stage::message);
  const auto verdict = call(runtime, 0, context);
  CHECK(verdict.kind == VerdictKind::quarantine);
  CHECK(verdict.folder == "Junk");
  CHECK(context.added == "X-Tagged: hello there\r\n");
}

TEST_CASE("The sandbox has no io, os.execute, debug, ffi, jit, load or dofile, and require finds only modules") {
  const auto verdict = run(R"(
    tern.hook("rcpt", function()
      if io == nil and os.execute == nil and debug == nil and ffi == nil and jit == nil and load == nil
         and loadstring == nil and dofile == nil and loadfile == nil and not pcall(require, "io") and setfenv == nil
         and getmetatable("") == nil and os.time() > 0 then
        return "accept"
      end
      return "defer"
    end)
  )");
  CHECK(verdict.kind == VerdictKind::accept);
}

TEST_CASE("An endless loop, even one a JIT would compile, ends at the time budget") {
  CHECK(failure(R"(tern.hook("rcpt", function() while true do end end))", Stage::rcpt, small_budget())
            .find("time budget") != std::string::npos);
  CHECK(failure(R"(tern.hook("rcpt", function() local x = 0 for i = 1, 1e15 do x = x + i % 7 end return x end))",
                Stage::rcpt, small_budget())
            .find("time budget") != std::string::npos);
}

TEST_CASE("A memory bomb ends at the memory budget, and so does one huge string.rep") {
  CHECK(failure(R"(tern.hook("rcpt", function() local t = {} while true do t[#t + 1] = {#t, "x" .. #t} end end))",
                Stage::rcpt, small_budget())
            .find("memory budget") != std::string::npos);
  CHECK(failure(R"(tern.hook("rcpt", function() return string.rep("x", 2^31) end))", Stage::rcpt, small_budget())
            .find("memory budget") != std::string::npos);
  CHECK(failure(R"(tern.hook("rcpt", function() return ("x"):rep(2^31) end))", Stage::rcpt, small_budget())
            .find("memory budget") != std::string::npos);
}

TEST_CASE("Deep recursion is an error, not a crash") {
  CHECK(failure(R"(local function f(n) return f(n + 1) + 1 end tern.hook("rcpt", function() return f(1) end))")
            .find("stack overflow") != std::string::npos);
}

TEST_CASE("An error names the script and line; so does a script that does not compile") {
  CHECK(failure("tern.hook('rcpt', function()\n  error('boom')\nend)").find("test.lua:2: boom") != std::string::npos);
  CHECK(failure("tern.hook('rcpt', function() return 42 end)").find("not a verdict") != std::string::npos);
  CHECK(failure("tern.hook('rcpt', function() return 'maybe' end)").find("not a verdict") != std::string::npos);
  CHECK(failure("tern.hook('message', function(tx) return tx:body() end)", Stage::rcpt)
            .find("not available at stage rcpt") != std::string::npos);
  CHECK_THROWS_WITH(prepare_scripts({{"broken.lua", "tern.hook('rcpt', function()\n  return (\nend)"}}, {}),
                    Catch::Contains("broken.lua:3:"));
  CHECK_THROWS_WITH(prepare_scripts({{"stage.lua", "tern.hook('nowhere', function() end)"}}, {}),
                    Catch::Contains("no stage \"nowhere\""));
}

TEST_CASE("A tx kept past its hook call is refused") {
  auto set = prepare_scripts({{"keep.lua", R"(
    local kept
    tern.hook("message", function(tx)
      if kept then return tern.reject(550, "5.7.1", kept:header("Subject")) end
      kept = tx
    end)
  )"}},
                             {});
  LuaRuntime runtime(set, nullptr);
  FakeContext first(Stage::message);
  CHECK(call(runtime, 0, first).kind == VerdictKind::next);
  FakeContext second(Stage::message);
  CHECK_THROWS_WITH(call(runtime, 0, second), Catch::Contains("has ended"));
}

TEST_CASE("Each script has its own globals") {
  auto set = prepare_scripts({{"a.lua",
                               "counter = 1 tern.hook('rcpt', function() return counter == 1 and 'accept' "
                               "or 'defer' end)"},
                              {"b.lua",
                               "counter = 2 tern.hook('rcpt', function() return counter == 2 and 'accept' "
                               "or 'defer' end)"}},
                             {});
  LuaRuntime runtime(set, nullptr);
  FakeContext context(Stage::rcpt);
  CHECK(call(runtime, 0, context).kind == VerdictKind::accept);
  CHECK(call(runtime, 1, context).kind == VerdictKind::accept);
}

TEST_CASE("docs/lua-api.md documents every function and field, and nothing that is not there") {
  std::ifstream file(TERN_LUA_API_DOC);
  REQUIRE(file);
  std::stringstream text;
  text << file.rdbuf();
  const std::string doc = text.str();
  std::set<std::string> documented;
  const std::regex heading(R"(### `((?:tern\.|tx[.:])[a-z_.]*[a-z_]))");
  for (auto it = std::sregex_iterator(doc.begin(), doc.end(), heading); it != std::sregex_iterator(); ++it) {
    documented.insert((*it)[1].str());
  }
  const std::vector<std::string> names = LuaRuntime::api_names();
  const std::set<std::string> provided(names.begin(), names.end());
  CHECK(provided.size() > 15);
  CHECK(documented == provided);
}

TEST_CASE("require loads a module of the script folders once, in an environment of its own") {
  std::map<std::string, tern::lua::Script> modules{
      {"lib.greeting", {"greeting.lua", "loads = (loads or 0) + 1 return {text = 'hello', loads = loads}"}}};
  auto set = prepare_scripts({{"main.lua", R"(
    local first = require("lib.greeting")
    local second = require("lib.greeting")
    tern.hook("rcpt", function()
      if first == second and first.loads == 1 and first.text == "hello" and loads == nil then return "accept" end
    end)
  )"}},
                             {}, modules);
  LuaRuntime runtime(set, nullptr);
  FakeContext context(Stage::rcpt);
  CHECK(call(runtime, 0, context).kind == VerdictKind::accept);
  CHECK_THROWS_WITH(prepare_scripts({{"main.lua", "require('missing')"}}, {}, modules),
                    Catch::Contains("not in the script folders"));
}

TEST_CASE("A hook that waits on the store resumes with the answer, and only a hook's own flow may wait") {
  const auto verdict = run(R"(
    tern.hook("rcpt", function(tx)
      local value, failure = tern.kv.get("greylist:x")
      if value == nil and failure:find("no store in this test") and tx.recipient == "bob@example.test" then
        return tern.reject(550, "5.7.1", "resumed")
      end
    end)
  )");
  CHECK(verdict.kind == VerdictKind::reject);
  CHECK(verdict.text == "resumed");
  CHECK(failure("tern.hook('rcpt', function() return coroutine.wrap(function() return tern.kv.get('x') end)() end)")
            .find("outside coroutines it makes") != std::string::npos);
  CHECK_THROWS_WITH(prepare_scripts({{"top.lua", "tern.kv.get('x')"}}, {}), Catch::Contains("works in a hook"));
  CHECK(failure("tern.hook('rcpt', function() coroutine.yield() end)").find("yielded") != std::string::npos);
}

TEST_CASE("A runaway loop inside a coroutine the script makes is stopped by the hook's budget") {
  CHECK(failure(R"(tern.hook("rcpt", function() coroutine.wrap(function() while true do end end)() end))", Stage::rcpt,
                small_budget())
            .find("time budget") != std::string::npos);
}

TEST_CASE("A hook waits for a DNS answer and decides on it") {
  const auto verdict = run(R"(
    tern.hook("rcpt", function(tx)
      local missing, why = tern.dns("a", "nowhere.example.test")
      local policy = tern.dns("txt", "policy.example.test")
      if missing == nil and why == "NXDOMAIN" and policy[1] == "v=block" then
        return tern.reject(550, "5.7.1", "blocked by policy")
      end
    end)
  )");
  CHECK(verdict.kind == VerdictKind::reject);
  CHECK(verdict.text == "blocked by policy");
  CHECK(failure("tern.hook('rcpt', function() return tern.dns('srv', 'x') end)").find("no record type") !=
        std::string::npos);
}

TEST_CASE("A hook changes a header field: every field of the name removed, the new one added on top") {
  auto set = prepare_scripts({{"tag.lua", R"(
    tern.hook("message", function(tx) tx:set_header("Subject", "[SPAM] " .. tx:header("Subject")) end)
  )"}},
                             {});
  LuaRuntime runtime(set, nullptr);
  FakeContext context(Stage::message);
  CHECK(call(runtime, 0, context).kind == VerdictKind::next);
  CHECK(context.removed == std::vector<std::string>{"Subject"});
  CHECK(context.added == "Subject: [SPAM] hello there\r\n");
}

TEST_CASE("A connection that cannot be made is an answer the script gets, not an error") {
  const auto verdict = run(R"(
    tern.hook("rcpt", function()
      local connection, failure = tern.tcp("127.0.0.1", 10023)
      if connection == nil and failure == "no network in this test" then return "accept" end
    end)
  )");
  CHECK(verdict.kind == VerdictKind::accept);
  CHECK(failure("tern.hook('rcpt', function() return tern.tcp('127.0.0.1', 0) end)").find("not 1 to 65535") !=
        std::string::npos);
}
