#include <catch2/catch.hpp>

#include <utility>  // before Boost.Asio: Boost 1.74's awaitable.hpp needs it with g++ 12

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "pipeline/hook_chain.hpp"
#include "tern/sdk/async_hook.hpp"
#include "tern/sdk/session_hook_context.hpp"
#include "test_server.hpp"

namespace {

using tern::pipeline::HookChain;
using tern::sdk::Stage;
using tern::sdk::Verdict;
using tern::sdk::VerdictKind;

struct Fixture {
  HookChain chain;
  tern::testing::TestServer server;
  tern::testing::RecordingLog& log = server.recorded;
  tern::sdk::ClientInfo client;
  std::vector<std::string> calls;

  void add(const std::string& name, Stage stage, int priority, Verdict verdict) {
    chain.add({name, stage, priority, [this, name, verdict](tern::sdk::HookContext&) {
                 calls.push_back(name);
                 return verdict;
               }});
  }
  Verdict run(Stage stage) {
    tern::sdk::SessionHookContext context(stage, client);
    return tern::testing::run_to_end(chain.run(stage, context, server));
  }
};

}  // namespace

TEST_CASE("Hooks run by priority, then in the order they were added") {
  Fixture f;
  f.add("late", Stage::mail, 10, Verdict::next());
  f.add("first", Stage::mail, -5, Verdict::next());
  f.add("second", Stage::mail, 0, Verdict::next());
  f.add("third", Stage::mail, 0, Verdict::next());
  CHECK_FALSE(f.run(Stage::mail).decided());
  CHECK(f.calls == std::vector<std::string>{"first", "second", "third", "late"});
}

TEST_CASE("The first decision ends the chain") {
  Fixture f;
  f.add("a", Stage::rcpt, 0, Verdict::next());
  f.add("b", Stage::rcpt, 1, Verdict::reject());
  f.add("c", Stage::rcpt, 2, Verdict::accept());
  Verdict verdict = f.run(Stage::rcpt);
  CHECK(verdict.kind == VerdictKind::reject);
  CHECK(f.calls == std::vector<std::string>{"a", "b"});
}

TEST_CASE("At connect and disconnect every hook runs and the first decision stands") {
  Fixture f;
  f.add("a", Stage::connect, 0, Verdict::defer());
  f.add("b", Stage::connect, 1, Verdict::reject());
  f.add("c", Stage::connect, 2, Verdict::next());
  Verdict verdict = f.run(Stage::connect);
  CHECK(verdict.kind == VerdictKind::defer);
  CHECK(f.calls == std::vector<std::string>{"a", "b", "c"});
}

TEST_CASE("A refusal without a reply gets the stage default") {
  Fixture f;
  f.add("r", Stage::rcpt, 0, Verdict::reject());
  Verdict reject = f.run(Stage::rcpt);
  CHECK(reject.code == 550);
  CHECK(reject.enhanced == "5.7.1");
  CHECK_FALSE(reject.text.empty());

  Fixture g;
  g.add("d", Stage::mail, 0, Verdict::defer());
  Verdict defer = g.run(Stage::mail);
  CHECK(defer.code == 451);
  CHECK(defer.enhanced == "4.7.1");

  Fixture h;
  h.add("x", Stage::helo, 0, Verdict::disconnect());
  CHECK(h.run(Stage::helo).code == 421);
}

TEST_CASE("A hook's own valid reply is kept") {
  Fixture f;
  f.add("r", Stage::rcpt, 0, Verdict::reject(553, "5.1.3", "Bad address syntax"));
  Verdict verdict = f.run(Stage::rcpt);
  CHECK(verdict.code == 553);
  CHECK(verdict.enhanced == "5.1.3");
  CHECK(verdict.text == "Bad address syntax");
  CHECK(f.log.lines.empty());
}

TEST_CASE("A reply that does not fit its verdict is replaced and logged with the hook's name") {
  Fixture f;
  f.add("liar", Stage::rcpt, 0, Verdict::reject(250, "2.0.0", "fine"));
  Verdict verdict = f.run(Stage::rcpt);
  CHECK(verdict.kind == VerdictKind::reject);
  CHECK(verdict.code == 550);
  CHECK(verdict.enhanced == "5.7.1");
  REQUIRE(f.log.lines.size() == 1);
  CHECK_THAT(f.log.lines[0], Catch::Contains("liar"));

  Fixture g;
  g.add("mismatch", Stage::mail, 0, Verdict::defer(450, "5.1.1", "x"));
  CHECK(g.run(Stage::mail).enhanced == "4.7.0");

  Fixture h;
  h.add("multiline", Stage::mail, 0, Verdict::reject(550, "5.7.1", "one\r\n250 smuggled"));
  CHECK(h.run(Stage::mail).text.find('\n') == std::string::npos);
}

TEST_CASE("A hook that throws becomes defer 451 4.3.0 and a log line naming it") {
  Fixture f;
  f.chain.add(
      {"exploding", Stage::rcpt, 0, [](tern::sdk::HookContext&) -> Verdict { throw std::runtime_error("boom"); }});
  f.add("after", Stage::rcpt, 1, Verdict::accept());
  Verdict verdict = f.run(Stage::rcpt);
  CHECK(verdict.kind == VerdictKind::defer);
  CHECK(verdict.code == 451);
  CHECK(verdict.enhanced == "4.3.0");
  CHECK(f.calls.empty());
  REQUIRE(f.log.lines.size() == 1);
  CHECK_THAT(f.log.lines[0], Catch::Contains("exploding") && Catch::Contains("boom"));
}

TEST_CASE("A hook that asks for a body it cannot have at its stage is deferred, not crashed") {
  Fixture f;
  f.chain.add({"greedy", Stage::rcpt, 0, [](tern::sdk::HookContext& context) {
                 return context.message().empty() ? Verdict::accept() : Verdict::next();
               }});
  Verdict verdict = f.run(Stage::rcpt);
  CHECK(verdict.kind == VerdictKind::defer);
  CHECK_THAT(f.log.lines.at(0), Catch::Contains("not available at stage rcpt"));
}

TEST_CASE("Discard before data is a misbehaving hook") {
  Fixture f;
  f.add("early", Stage::rcpt, 0, Verdict::discard());
  Verdict verdict = f.run(Stage::rcpt);
  CHECK(verdict.kind == VerdictKind::defer);
  CHECK(verdict.code == 451);

  Fixture g;
  g.add("ok", Stage::message, 0, Verdict::discard());
  CHECK(g.run(Stage::message).kind == VerdictKind::discard);
}

TEST_CASE("Decisions at queued are logged and ignored: the message is stored already") {
  Fixture f;
  f.add("late", Stage::queued, 0, Verdict::reject());
  CHECK_FALSE(f.run(Stage::queued).decided());
  CHECK_FALSE(f.log.lines.empty());
}

namespace {

// A hook that waits (for a timer, as a DNS answer would) before it answers.
class WaitingHook final : public tern::sdk::AsyncHook {
 public:
  WaitingHook(Verdict verdict, std::vector<std::string>& calls) : verdict_(std::move(verdict)), calls_(calls) {}
  tern::sdk::Task<Verdict> call(tern::sdk::HookContext&, tern::sdk::ServerContext&) const override {
    const auto executor = co_await boost::asio::this_coro::executor;
    boost::asio::steady_timer timer(executor, std::chrono::milliseconds(1));
    co_await timer.async_wait(boost::asio::use_awaitable);
    calls_.push_back("waiting");
    if (verdict_.text == "throw") throw std::runtime_error("the policy server went away");
    co_return verdict_;
  }

 private:
  Verdict verdict_;
  std::vector<std::string>& calls_;
};

}  // namespace

TEST_CASE("Hooks that wait and hooks that do not share one chain, in priority order") {
  Fixture f;
  f.add("first", Stage::rcpt, 0, Verdict::next());
  f.chain.add({"waits", Stage::rcpt, 1, {}, std::make_shared<WaitingHook>(Verdict::next(), f.calls)});
  f.add("last", Stage::rcpt, 2, Verdict::reject(554, "5.7.1", "Listed"));
  const Verdict verdict = f.run(Stage::rcpt);
  CHECK(f.calls == std::vector<std::string>{"first", "waiting", "last"});
  CHECK(verdict.code == 554);
}

TEST_CASE("A waiting hook's decision ends the chain, and its failure is a logged defer like any hook's") {
  Fixture f;
  f.chain.add({"waits", Stage::mail, 0, {}, std::make_shared<WaitingHook>(Verdict::defer(), f.calls)});
  f.add("never", Stage::mail, 1, Verdict::accept());
  CHECK(f.run(Stage::mail).code == 451);
  CHECK(f.calls == std::vector<std::string>{"waiting"});

  Fixture g;
  g.chain.add({"broken", Stage::mail, 0, {}, std::make_shared<WaitingHook>(Verdict::reject(0, {}, "throw"), g.calls)});
  const Verdict failed = g.run(Stage::mail);
  CHECK(failed.enhanced == "4.3.0");
  CHECK(g.log.mentions("broken"));
  CHECK(g.log.mentions("the policy server went away"));
}
