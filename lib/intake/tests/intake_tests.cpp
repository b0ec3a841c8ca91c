#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "fake_store.hpp"
#include "intake.hpp"
#include "test_server.hpp"

namespace {

using tern::intake::Incoming;
using tern::intake::Origin;
using tern::intake::Outcome;
using tern::sdk::HookContext;
using tern::sdk::Stage;
using tern::sdk::Verdict;
using Status = Outcome::Status;

struct Fixture {
  tern::testing::FakeStore store;
  tern::testing::TestServer server;
  Fixture() { server.mail_store = &store; }

  // A message from outside for `recipients`, resolved as SMTP would at RCPT.
  Incoming incoming(const std::vector<std::string>& recipients, std::string message = "Subject: hi\r\n\r\nbody\r\n") {
    Incoming in;
    in.client.session_id = "s1";
    in.client.protocol = "smtp";
    in.envelope.sender = "carol@remote.test";
    in.name = "s1.1";
    in.received_field = "Received: from client by mx.example.test (Tern) with ESMTP id s1.1; now\r\n";
    for (const std::string& address : recipients) {
      tern::sdk::Recipient recipient{address, "", ""};
      in.destinations.add(recipient, tern::intake::resolve(store.directory(), "mx.example.test", recipient));
      in.envelope.recipients.push_back(recipient);
    }
    in.message = std::move(message);
    return in;
  }
  Outcome file(Incoming in) { return tern::testing::run_to_end(tern::intake::receive(server, std::move(in))); }
  // The hooks of one stage; the others say next.
  void hook(Stage stage, std::function<Verdict(HookContext&)> function) {
    auto previous = server.hooks;
    server.hooks = [=](Stage at, HookContext& context) {
      if (at == stage) return function(context);
      return previous ? previous(at, context) : Verdict::next();
    };
  }
};

}  // namespace

TEST_CASE("A received message is filed for each local user and queued for the remote ones, trace on top") {
  Fixture f;
  const Outcome outcome = f.file(f.incoming({"alice@example.test", "dave@remote.test"}));
  REQUIRE(outcome.status == Status::stored);
  REQUIRE(f.store.received.size() == 1);
  const auto& [message, intake] = f.store.received[0];
  CHECK(message.starts_with("Received: from client by mx.example.test"));
  CHECK(message.ends_with("Subject: hi\r\n\r\nbody\r\n"));
  REQUIRE(intake.filings.size() == 1);
  CHECK(intake.filings[0].user == "alice@example.test");
  CHECK(intake.filings[0].mailbox == "INBOX");
  REQUIRE(intake.remote.size() == 1);
  CHECK(intake.remote[0].address == "dave@remote.test");
  CHECK(intake.sender == "carol@remote.test");
  CHECK(outcome.users == std::vector<std::string>{"alice@example.test"});
  CHECK(outcome.remote == std::vector<std::string>{"dave@remote.test"});
  CHECK(f.server.changed == std::vector<std::string>{"alice@example.test"});
  CHECK(f.server.counted == std::vector<std::pair<std::string, std::int64_t>>{{"messages_received", 1}});
}

TEST_CASE("A message hook's refusal is the outcome's reply, and nothing is filed") {
  Fixture f;
  f.hook(Stage::message, [](HookContext&) { return Verdict::reject(554, "5.7.1", "Spam"); });
  const Outcome outcome = f.file(f.incoming({"alice@example.test"}));
  CHECK(outcome.status == Status::refused);
  CHECK(outcome.reply.code == 554);
  CHECK(outcome.reply.text == "Spam");
  CHECK(f.store.received.empty());
  CHECK(f.server.changed.empty());
}

TEST_CASE("Message hooks add header fields under the trace, remove fields, and rewrite the envelope") {
  Fixture f;
  f.hook(Stage::message, [](HookContext& context) {
    context.add_header("X-Checked", "yes");
    context.remove_header("X-Secret");
    context.set_sender("bounces@example.test");
    context.remove_recipient("alice@example.test");
    context.add_recipient("bob@example.test");
    context.add_recipient("archive@remote.test");
    context.add_recipient("ghost@example.test");  // nobody: skipped
    return Verdict::next();
  });
  const Outcome outcome = f.file(f.incoming({"alice@example.test"}, "X-Secret: 1\r\nSubject: hi\r\n\r\nbody\r\n"));
  REQUIRE(outcome.status == Status::stored);
  const auto& [message, intake] = f.store.received.at(0);
  CHECK(message.find("(Tern) with ESMTP id s1.1; now\r\nX-Checked: yes\r\nSubject: hi\r\n") != std::string::npos);
  CHECK(message.find("X-Secret") == std::string::npos);
  CHECK(intake.sender == "bounces@example.test");
  REQUIRE(intake.filings.size() == 1);
  CHECK(intake.filings[0].user == "bob@example.test");
  REQUIRE(intake.remote.size() == 1);
  CHECK(intake.remote[0].address == "archive@remote.test");
  CHECK(f.server.recorded.mentions("ghost@example.test"));
}

TEST_CASE("A discarded message writes only its state; a quarantined one is filed in the folder named") {
  Fixture f;
  f.hook(Stage::message, [](HookContext&) { return Verdict::discard(); });
  Incoming in = f.incoming({"alice@example.test"});
  in.state = {{"fetch:isp", "uidl-1", "seen"}};
  CHECK(f.file(std::move(in)).status == Status::discarded);
  REQUIRE(f.store.received.size() == 1);
  CHECK_FALSE(f.store.received[0].intake.keeps_a_copy());
  CHECK(f.store.received[0].intake.state.size() == 1);

  Fixture g;
  g.hook(Stage::message, [](HookContext&) { return Verdict::quarantine("Junk"); });
  CHECK(g.file(g.incoming({"alice@example.test", "bob@example.test"})).status == Status::stored);
  for (const tern::sdk::Filing& filing : g.store.received.at(0).intake.filings) CHECK(filing.mailbox == "Junk");
}

TEST_CASE("A discard decided before the message arrived stands over the message hooks' accept") {
  Fixture f;
  f.hook(Stage::message, [](HookContext&) { return Verdict::accept(); });
  Incoming in = f.incoming({"alice@example.test"});
  in.early_verdict = Verdict::discard();
  CHECK(f.file(std::move(in)).status == Status::discarded);
  CHECK(f.store.received.empty());
}

TEST_CASE("Over quota is 452 4.2.2 while a mailbox is full and 552 5.2.2 when the message never fits") {
  Fixture f;
  f.store.quotas["alice@example.test"] = {1000, 1000, 0, 0};
  const Outcome full = f.file(f.incoming({"alice@example.test"}, "Subject: x\r\n\r\n" + std::string(600, 'a')));
  CHECK(full.status == Status::over_quota);
  CHECK(full.reply.code == 452);
  CHECK(full.reply.enhanced == "4.2.2");
  const Outcome huge = f.file(f.incoming({"alice@example.test"}, "Subject: x\r\n\r\n" + std::string(2000, 'a')));
  CHECK(huge.reply.code == 552);
  CHECK(huge.reply.enhanced == "5.2.2");
  CHECK(f.store.received.empty());
  // One recipient with room is enough: every recipient gets it.
  CHECK(f.file(f.incoming({"alice@example.test", "bob@example.test"}, "Subject: x\r\n\r\n" + std::string(600, 'a')))
            .status == Status::stored);
}

TEST_CASE("A full disk is store_full, 452 4.3.1; any other store failure is failed, 451 4.3.0") {
  Fixture f;
  f.store.failure = std::make_exception_ptr(tern::sdk::StoreFull("disk full"));
  const Outcome full = f.file(f.incoming({"alice@example.test"}));
  CHECK(full.status == Status::store_full);
  CHECK(full.reply.code == 452);
  CHECK(full.reply.enhanced == "4.3.1");
  f.store.failure = std::make_exception_ptr(tern::sdk::StoreError("database is locked"));
  const Outcome failed = f.file(f.incoming({"alice@example.test"}));
  CHECK(failed.status == Status::failed);
  CHECK(failed.reply.code == 451);
  CHECK(f.server.recorded.mentions("database is locked"));
  CHECK(f.server.changed.empty());
}

TEST_CASE("A looping message is refused 554 5.4.6: too many hops, or an alias it passed before") {
  Fixture f;
  std::string hops;
  for (int i = 0; i < 51; ++i) hops += "Received: from a by b; now\r\n";
  const Outcome looping = f.file(f.incoming({"alice@example.test"}, hops + "Subject: x\r\n\r\nx\r\n"));
  CHECK(looping.status == Status::refused);
  CHECK(looping.reply.enhanced == "5.4.6");

  f.store.aliases["team@example.test"] = {"friend@remote.test"};
  const Outcome again = f.file(f.incoming({"team@example.test"}, "Delivered-To: team@example.test\r\n\r\nx\r\n"));
  CHECK(again.reply.code == 554);
  CHECK(again.reply.text == "Mail forwarding loop for <team@example.test>");
  // Forwarded the first time, and marked so that it is known when it comes back.
  CHECK(f.file(f.incoming({"team@example.test"})).status == Status::stored);
  CHECK(f.store.received.at(0).message.find("Delivered-To: team@example.test\r\n") != std::string::npos);
  CHECK(f.store.received.at(0).intake.remote.at(0).orcpt == "rfc822;team@example.test");
}

TEST_CASE("Each local user's deliver hooks choose folder and flags, redirect, discard or refuse") {
  Fixture f;
  f.hook(Stage::deliver, [](HookContext& context) {
    if (context.recipient() == "alice@example.test") {
      context.add_flag("\\Flagged");
      context.redirect("alice@elsewhere.test");
      return Verdict::quarantine("Club");
    }
    return Verdict::discard();
  });
  REQUIRE(f.file(f.incoming({"alice@example.test", "bob@example.test"})).status == Status::stored);
  const auto& [message, intake] = f.store.received.at(0);
  REQUIRE(intake.filings.size() == 1);
  CHECK(intake.filings[0].user == "alice@example.test");
  CHECK(intake.filings[0].mailbox == "Club");
  CHECK(intake.filings[0].flags == "\\Flagged");
  REQUIRE(intake.remote.size() == 1);
  CHECK(intake.remote[0].address == "alice@elsewhere.test");
  CHECK(message.starts_with("Delivered-To: alice@example.test\r\n"));

  Fixture g;
  g.hook(Stage::deliver, [](HookContext&) { return Verdict::defer(451, "4.2.0", "Later"); });
  const Outcome refused = g.file(g.incoming({"alice@example.test"}));
  CHECK(refused.status == Status::refused);
  CHECK(refused.reply.text == "Later");
  CHECK(g.store.received.empty());
}

TEST_CASE("Tern's own notices meet only the deliver hooks, are never over quota and carry no trace of ours") {
  Fixture f;
  std::vector<Stage> stages;
  f.server.hooks = [&](Stage stage, HookContext& context) {
    stages.push_back(stage);
    CHECK(context.client().protocol == "local");
    return Verdict::next();
  };
  f.store.quotas["alice@example.test"] = {10, 10, 100, 100};
  Incoming in = f.incoming({"alice@example.test"}, "From: MAILER-DAEMON\r\n\r\nbounce\r\n");
  in.origin = Origin::server;
  in.client.protocol = "local";
  in.envelope.sender = "";
  const Outcome outcome = f.file(std::move(in));
  REQUIRE(outcome.status == Status::stored);
  CHECK(stages == std::vector<Stage>{Stage::deliver});
  CHECK(f.store.received.at(0).message == "From: MAILER-DAEMON\r\n\r\nbounce\r\n");
  CHECK(f.server.counted.empty());
  CHECK(f.server.changed == std::vector<std::string>{"alice@example.test"});
}

TEST_CASE("Queued hooks see the message as filed, after the commit") {
  Fixture f;
  std::string seen;
  std::size_t commits_before = 99;
  f.hook(Stage::queued, [&](HookContext& context) {
    seen = std::string(context.message());
    commits_before = f.store.received.size();
    return Verdict::next();
  });
  REQUIRE(f.file(f.incoming({"alice@example.test"})).status == Status::stored);
  CHECK(seen == f.store.received.at(0).message);
  CHECK(commits_before == 1);
}
