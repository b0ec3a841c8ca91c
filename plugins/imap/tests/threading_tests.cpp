#include <catch2/catch.hpp>

#include <fmt/ranges.h>

#include "addresses.hpp"
#include "encoded_words.hpp"
#include "threading.hpp"

using tern::imap::base_subject;
using tern::imap::MessageSummary;
using tern::imap::parse_sent_date;
using tern::imap::SortKey;
using tern::imap::ThreadAlgorithm;

namespace {

std::string base(std::string_view subject) {
  return base_subject(subject).text;
}

std::optional<std::vector<tern::imap::SortCriterion>> criteria(std::string_view program) {
  std::string tag;
  const auto command = tern::imap::parse_command(fmt::format("a SORT {} UTF-8 ALL\r\n", program), tag);
  REQUIRE(command);
  return tern::imap::parse_sort_criteria(command->arguments[0]);
}

std::string sorted(const std::vector<MessageSummary>& messages, std::string_view program) {
  const auto parsed = criteria(program);
  REQUIRE(parsed);
  return fmt::format("{}", fmt::join(tern::imap::sort_messages(messages, *parsed), " "));
}

// Message n, sent on 1 Jul 2003 at n o'clock unless a date is given.
MessageSummary message(std::uint32_t number, std::string subject, std::string id = "", std::string references = "",
                       std::string date = "") {
  MessageSummary summary;
  summary.number = number;
  summary.arrival = 1'000'000 + number;
  summary.subject = std::move(subject);
  summary.message_id = id.empty() ? "" : "<" + id + "@example.test>";
  for (std::size_t at = 0; at < references.size();) {
    const std::size_t space = std::min(references.find(' ', at), references.size());
    summary.references += "<" + references.substr(at, space - at) + "@example.test> ";
    at = space + 1;
  }
  summary.date = date.empty() ? fmt::format("Tue, 1 Jul 2003 {:02}:00:00 +0000", number % 24) : date;
  return summary;
}

std::string threads(const std::vector<MessageSummary>& messages, ThreadAlgorithm algorithm) {
  return tern::imap::thread_messages(messages, algorithm);
}

}  // namespace

TEST_CASE("The base subject drops Re:, Fw:, Fwd: and list tags, and says when it was a reply") {
  CHECK(base("Lunch") == "Lunch");
  CHECK_FALSE(base_subject("Lunch").reply_or_forward);
  CHECK(base("Re: Lunch") == "Lunch");
  CHECK(base_subject("Re: Lunch").reply_or_forward);
  CHECK(base("RE: re: Fwd: FW: Lunch") == "Lunch");
  CHECK(base("Fwd : Lunch") == "Lunch");
  CHECK(base("Re[2]: Lunch") == "Lunch");
  CHECK(base("[tern-dev] Re: [tern-dev] Lunch") == "Lunch");
  CHECK(base_subject("[tern-dev] Re: Lunch").reply_or_forward);
  CHECK(base("[tern-dev] Lunch") == "Lunch");
  CHECK_FALSE(base_subject("[tern-dev] Lunch").reply_or_forward);
  CHECK(base("Rebooting: tonight") == "Rebooting: tonight");
  CHECK(base("Referendum") == "Referendum");
}

TEST_CASE("A list tag that is the whole subject stays, and trailers and [fwd: ...] wrappers go") {
  CHECK(base("[only a tag]") == "[only a tag]");
  CHECK(base("[tern-dev] [only a tag]") == "[only a tag]");
  CHECK(base("Lunch (fwd)") == "Lunch");
  CHECK(base_subject("Lunch (FWD)").reply_or_forward);
  CHECK(base("[Fwd: Re: Lunch]") == "Lunch");
  CHECK(base_subject("[Fwd: Lunch]").reply_or_forward);
  CHECK(base("[fwd: [fwd: Lunch] (fwd)]") == "Lunch");
  CHECK(base("Re:") == "");
  CHECK(base("") == "");
}

TEST_CASE("The base subject collapses white space and decodes encoded-words") {
  CHECK(base("  Lunch \t  menu\r\n  today  ") == "Lunch menu today");
  CHECK(base("=?UTF-8?Q?Re=3A_caf=C3=A9?=") == "caf\xC3\xA9");
  CHECK(base_subject("=?UTF-8?Q?Re=3A_caf=C3=A9?=").reply_or_forward);
  CHECK(base("Re: =?ISO-8859-1?Q?caf=E9?= au lait") == "caf\xC3\xA9 au lait");
}

TEST_CASE("Encoded-words decode from B and Q, adjacent ones join, and undecodable ones stay as written") {
  using tern::imap::decode_encoded_words;
  CHECK(decode_encoded_words("=?UTF-8?B?SGVs?=  =?utf-8?b?bG8=?= world") == "Hello world");
  CHECK(decode_encoded_words("=?UTF-8?B?SGVsbG8?=") == "Hello");  // padding left out
  CHECK(decode_encoded_words("=?us-ascii*en?Q?a_b?= c") == "a b c");
  CHECK(decode_encoded_words("=?X-NO-SUCH-CHARSET?Q?abc?=") == "=?X-NO-SUCH-CHARSET?Q?abc?=");
  CHECK(decode_encoded_words("=?UTF-8?Q?bad=ZZ?=") == "=?UTF-8?Q?bad=ZZ?=");
  CHECK(decode_encoded_words("=?UTF-8?Q?with space?=") == "=?UTF-8?Q?with space?=");
  CHECK(decode_encoded_words("2 + 2 =? 4") == "2 + 2 =? 4");
}

TEST_CASE("A Date field gives the day as written and the moment in UTC") {
  const auto sent = parse_sent_date("Tue, 1 Jul 2003 10:52:37 +0200");
  REQUIRE(sent);
  CHECK(sent->utc == 1057049557);
  CHECK(sent->day == 12234);
  const auto late = parse_sent_date("Tue, 1 Jul 2003 23:30:00 -0500");
  REQUIRE(late);
  CHECK(late->day == 12234);
  CHECK(late->utc / 86400 == 12235);
  CHECK(parse_sent_date("1 Jan 1970 00:00:00 +0000")->utc == 0);
  CHECK(parse_sent_date("2 Jan 1970 00:01 GMT")->utc == 86400 + 60);
}

TEST_CASE("Obsolete Date forms are read: two-digit years, US zones, comments, spaces around colons") {
  CHECK(parse_sent_date("Tue, 1 Jul 03 10:52:37 EDT")->utc == 1057071157);
  CHECK(parse_sent_date("Tue (day) , 1 jul 2003 10 : 52 : 37 +0200 (CEST)")->utc == 1057049557);
  CHECK(parse_sent_date("1 Jul 2003")->utc == 12234 * 86400);
  CHECK(parse_sent_date("1 Jul 103 00:00 Z")->day == 12234);
}

TEST_CASE("A Date that cannot be read gives no date") {
  CHECK_FALSE(parse_sent_date(""));
  CHECK_FALSE(parse_sent_date("yesterday"));
  CHECK_FALSE(parse_sent_date("31 Feb 2003 10:00 +0000"));
  CHECK_FALSE(parse_sent_date("1 Jul 2003 25:00 +0000"));
  CHECK_FALSE(parse_sent_date("1 Jly 2003 10:00 +0000"));
  CHECK_FALSE(parse_sent_date("1 Jul 2003 10: +0000"));
}

TEST_CASE("A SORT program is a list of known keys, each with at most one REVERSE") {
  const auto parsed = criteria("(REVERSE date Subject)");
  REQUIRE(parsed);
  REQUIRE(parsed->size() == 2);
  CHECK(((*parsed)[0].key == SortKey::date && (*parsed)[0].reverse));
  CHECK(((*parsed)[1].key == SortKey::subject && !(*parsed)[1].reverse));
  CHECK(criteria("(ARRIVAL CC FROM SIZE TO)"));
  CHECK_FALSE(criteria("()"));
  CHECK_FALSE(criteria("(REVERSE)"));
  CHECK_FALSE(criteria("(REVERSE REVERSE DATE)"));
  CHECK_FALSE(criteria("(COLOR)"));
  CHECK_FALSE(criteria("DATE"));
  CHECK(tern::imap::sort_needs_headers(*criteria("(SIZE FROM)")));
  CHECK_FALSE(tern::imap::sort_needs_headers(*criteria("(REVERSE ARRIVAL SIZE)")));
}

TEST_CASE("SORT SUBJECT orders by base subject, case-insensitively, ties in mailbox order") {
  const std::vector<MessageSummary> messages = {message(1, "Re: lunch"), message(2, "[list] Agenda"),
                                                message(3, "Fwd: LUNCH"), message(4, "beer"), message(5, "Lunch")};
  CHECK(sorted(messages, "(SUBJECT)") == "2 4 1 3 5");
  // REVERSE turns one criterion round, not the mailbox order that breaks ties.
  CHECK(sorted(messages, "(REVERSE SUBJECT)") == "1 3 5 4 2");
}

TEST_CASE("SORT DATE compares sent moments across zones, and an unreadable date is the arrival time") {
  std::vector<MessageSummary> messages = {message(1, "a", "", "", "Tue, 1 Jul 2003 10:00:00 +0200"),
                                          message(2, "b", "", "", "Tue, 1 Jul 2003 09:00:00 +0000"),
                                          message(3, "c", "", "", "not a date"),
                                          message(4, "d", "", "", "Tue, 1 Jul 2003 04:30:00 -0500")};
  messages[2].arrival = 1057042800;  // 1 Jul 2003 07:00:00 UTC, later than the others' arrival
  CHECK(sorted(messages, "(DATE)") == "3 1 2 4");
  CHECK(sorted(messages, "(REVERSE DATE)") == "4 2 1 3");
  CHECK(sorted(messages, "(ARRIVAL)") == "1 2 4 3");
  CHECK(sorted(messages, "(REVERSE ARRIVAL)") == "3 4 2 1");
}

TEST_CASE("SORT FROM, TO and CC compare the first address's local part; a missing one sorts first") {
  std::vector<MessageSummary> messages = {message(1, "a"), message(2, "b"), message(3, "c")};
  messages[0].from = tern::mime::first_mailbox("Zed <bob@z.test>");
  messages[1].from = tern::mime::first_mailbox("\"Someone\" <Alice@y.test>, carol@x.test");
  messages[2].from = tern::mime::first_mailbox("undisclosed:;");
  messages[0].cc = "dave";
  CHECK(messages[0].from == "bob");
  CHECK(messages[2].from.empty());
  CHECK(sorted(messages, "(FROM)") == "3 2 1");
  CHECK(sorted(messages, "(CC)") == "2 3 1");
  CHECK(sorted(messages, "(REVERSE CC)") == "1 2 3");
}

TEST_CASE("SORT by several criteria uses the next one only for ties") {
  std::vector<MessageSummary> messages = {message(1, "x"), message(2, "y"), message(3, "x"), message(4, "y")};
  messages[0].size = 300;
  messages[1].size = 100;
  messages[2].size = 200;
  messages[3].size = 100;
  CHECK(sorted(messages, "(SIZE)") == "2 4 3 1");
  CHECK(sorted(messages, "(SUBJECT REVERSE SIZE)") == "1 3 2 4");
  CHECK(sorted({}, "(SIZE)").empty());
}

TEST_CASE("THREAD ORDEREDSUBJECT: one thread per base subject, first message first, the rest its children") {
  const std::vector<MessageSummary> messages = {
      message(1, "Lunch"),     message(2, "Re: Lunch"), message(3, "Beer", "", "", "Mon, 30 Jun 2003 12:00:00 +0000"),
      message(4, "re: lunch"), message(5, "Coffee"),    message(6, "Re: Coffee")};
  CHECK(threads(messages, ThreadAlgorithm::ordered_subject) == "(3)(1 (2)(4))(5 6)");
  CHECK(threads({}, ThreadAlgorithm::ordered_subject).empty());
}

TEST_CASE("THREAD REFERENCES follows References, or In-Reply-To when there are none") {
  std::vector<MessageSummary> messages = {message(1, "Plan", "a"), message(2, "Re: Plan", "b"),
                                          message(3, "Re: Plan", "c", "a b")};
  messages[1].in_reply_to = "<a@example.test> (Alice's message of Tuesday)";
  CHECK(threads(messages, ThreadAlgorithm::references) == "(1 2 3)");
}

TEST_CASE("THREAD REFERENCES nests as RFC 5256 writes it: one child flat, several in parentheses") {
  const std::vector<MessageSummary> messages = {message(3, "s", "m3"),         message(4, "s", "m4", "m3 m6"),
                                                message(6, "s", "m6", "m3"),   message(7, "s", "m7", "m6 m44"),
                                                message(23, "s", "m23", "m4"), message(44, "s", "m44", "m3 m6"),
                                                message(96, "s", "m96", "m7")};
  CHECK(threads(messages, ThreadAlgorithm::references) == "(3 6 (4 23)(44 7 96))");
}

TEST_CASE("THREAD REFERENCES puts siblings in sent order, whatever the mailbox order") {
  const std::vector<MessageSummary> messages = {message(1, "Plan", "a"),
                                                message(2, "Re: Plan", "b", "a", "Tue, 1 Jul 2003 12:00:00 +0000"),
                                                message(3, "Re: Plan", "c", "a", "Tue, 1 Jul 2003 11:00:00 +0000"),
                                                message(4, "Other", "d", "", "Mon, 30 Jun 2003 00:00:00 +0000")};
  CHECK(threads(messages, ThreadAlgorithm::references) == "(4)(1 (3)(2))");
}

TEST_CASE("THREAD REFERENCES: a missing parent is a dummy, kept at the top only to join several replies") {
  CHECK(threads({message(2, "x", "b", "gone"), message(3, "y", "c", "gone")}, ThreadAlgorithm::references) ==
        "((2)(3))");
  CHECK(threads({message(2, "x", "b", "gone")}, ThreadAlgorithm::references) == "(2)");
  // Below the top a dummy gives way to its children.
  CHECK(threads({message(1, "x", "a"), message(2, "y", "b", "a gone")}, ThreadAlgorithm::references) == "(1 2)");
}

TEST_CASE("THREAD REFERENCES gathers top-level threads of the same base subject") {
  // A reply without references joins the thread of the original.
  CHECK(threads({message(1, "Lunch", "a"), message(2, "Re: Lunch", "b")}, ThreadAlgorithm::references) == "(1 2)");
  // Two originals of the same subject go under a dummy.
  CHECK(threads({message(1, "Lunch", "a"), message(2, "lunch", "b"), message(3, "Beer", "c")},
                ThreadAlgorithm::references) == "((1)(2))(3)");
  // An empty subject gathers nothing.
  CHECK(threads({message(1, "", "a"), message(2, "Re:", "b")}, ThreadAlgorithm::references) == "(1)(2)");
}

TEST_CASE("THREAD REFERENCES survives loops and duplicate Message-IDs") {
  CHECK(threads({message(1, "x", "a", "b"), message(2, "y", "b", "a")}, ThreadAlgorithm::references) == "(2 1)");
  CHECK(threads({message(1, "x", "a", "a")}, ThreadAlgorithm::references) == "(1)");
  // The second message with ID a is found by no reference: the reply goes to the first.
  CHECK(threads({message(1, "X", "a"), message(2, "Y", "a"), message(3, "Re: Z", "c", "a")},
                ThreadAlgorithm::references) == "(1 3)(2)");
  CHECK(threads({}, ThreadAlgorithm::references).empty());
}
