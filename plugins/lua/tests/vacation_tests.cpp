#include <catch2/catch.hpp>

#include "vacation.hpp"

using tern::lua::vacation_refusal;
using tern::lua::vacation_reply;
using tern::lua::VacationRequest;

namespace {

VacationRequest request(std::string sender) {
  VacationRequest made;
  made.user = "alice@example.org";
  made.sender = std::move(sender);
  made.text = "Away.\nBack Monday.";
  return made;
}

const std::string kLetter =
    "From: bob@example.net\r\nTo: Alice <Alice@Example.org>\r\nSubject: lunch\r\n"
    "Message-ID: <m1@example.net>\r\n\r\nnoon?\r\n";

}  // namespace

TEST_CASE("A letter addressed to the user from a person may be answered") {
  CHECK_FALSE(vacation_refusal(kLetter, request("bob@example.net")));
}

TEST_CASE("No vacation reply goes to the null sender, system or list senders, or the user") {
  CHECK(vacation_refusal(kLetter, request("")) == "the null sender gets no reply");
  for (const char* sender : {"MAILER-DAEMON@example.net", "owner-club@example.net", "club-request@example.net",
                             "news-bounces@example.net", "noreply@example.net"}) {
    CHECK(vacation_refusal(kLetter, request(sender)) == "a system or list address gets no reply");
  }
  CHECK(vacation_refusal(kLetter, request("ALICE@example.org")) == "the user's own mail gets no reply");
}

TEST_CASE("No vacation reply answers list, bulk or automatic mail") {
  const VacationRequest from_bob = request("bob@example.net");
  CHECK(vacation_refusal("List-Id: <club.example.net>\r\n" + kLetter, from_bob) == "list mail gets no reply");
  CHECK(vacation_refusal("Precedence: bulk\r\n" + kLetter, from_bob) == "bulk mail gets no reply");
  CHECK(vacation_refusal("Auto-Submitted: auto-replied\r\n" + kLetter, from_bob) == "automatic mail gets no reply");
  CHECK_FALSE(vacation_refusal("Auto-Submitted: no\r\n" + kLetter, from_bob));
}

TEST_CASE("A vacation reply needs the user (or one of their addresses) in To, Cc or Bcc, as a whole address") {
  VacationRequest from_bob = request("bob@example.net");
  const std::string to_list = "To: everyone@example.org\r\nSubject: hi\r\n\r\nx\r\n";
  CHECK(vacation_refusal(to_list, from_bob) == "the message is not addressed to the user");
  CHECK(vacation_refusal("To: malice@example.org\r\n\r\nx\r\n", from_bob) ==
        "the message is not addressed to the user");
  CHECK_FALSE(vacation_refusal("To: x@example.net\r\nCc: alice@example.org\r\n\r\nx\r\n", from_bob));
  from_bob.addresses = {"everyone@example.org"};
  CHECK_FALSE(vacation_refusal(to_list, from_bob));
}

TEST_CASE("A vacation reply is marked automatic and threads with the message") {
  VacationRequest from_bob = request("bob@example.net");
  const std::string reply = vacation_reply(kLetter, from_bob, "Mon, 23 Nov 2026 10:00:00 +0000", "<r1@example.org>");
  CHECK(reply.starts_with("From: <alice@example.org>\r\nTo: <bob@example.net>\r\nSubject: Auto: lunch\r\n"));
  CHECK(reply.find("Auto-Submitted: auto-replied\r\n") != std::string::npos);
  CHECK(reply.find("In-Reply-To: <m1@example.net>\r\nReferences: <m1@example.net>\r\n") != std::string::npos);
  CHECK(reply.ends_with("\r\n\r\nAway.\r\nBack Monday.\r\n"));
  from_bob.subject = "Abwesend bis Montag, grüße";
  const std::string encoded = vacation_reply(kLetter, from_bob, "date", "<r2@example.org>");
  CHECK(encoded.find("Subject: =?UTF-8?B?") != std::string::npos);
}
