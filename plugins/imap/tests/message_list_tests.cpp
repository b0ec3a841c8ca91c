#include <catch2/catch.hpp>

#include "message_list.hpp"

namespace {

using tern::imap::ListSource;
using tern::imap::MailboxLists;
using tern::imap::MessageList;
using tern::imap::Messages;

Messages three() {
  Messages messages(3);
  for (std::uint32_t i = 0; i < 3; ++i) {
    messages[i].id = i + 10;
    messages[i].uid = i + 1;
  }
  return messages;
}

// A store that can only read lists whole.
template <typename Load>
ListSource whole(Load load) {
  return ListSource{load, [](std::uint64_t) { return std::optional<tern::sdk::MailboxChanges>(); }};
}

}  // namespace

TEST_CASE("Sessions at the same change number share one list, loaded once") {
  MailboxLists lists;
  int loads = 0;
  const auto load = [&] {
    ++loads;
    return three();
  };
  auto first = lists.get("alice@example.test", "INBOX", 100, 7, whole(load));
  auto second = lists.get("alice@example.test", "INBOX", 100, 7, whole(load));
  CHECK(loads == 1);
  CHECK(first == second);
  // Another mailbox, or a newer change number, is read anew.
  lists.get("alice@example.test", "Sent", 100, 7, whole(load));
  auto newer = lists.get("alice@example.test", "INBOX", 100, 8, whole(load));
  CHECK(loads == 3);
  CHECK(newer != first);
  // Once nobody holds a list it is gone, and read again when asked for.
  first.reset();
  second.reset();
  newer.reset();
  const auto held = lists.get("alice@example.test", "INBOX", 100, 8, whole(load));
  CHECK(loads == 4);
  // A mailbox deleted and made again (another UIDVALIDITY) at the same change number is another list.
  const auto other = lists.get("alice@example.test", "INBOX", 101, 8, whole(load));
  CHECK(loads == 5);
  CHECK(other != held);
}

TEST_CASE("A session's change is its own: the shared list and other sessions keep theirs") {
  MailboxLists lists;
  auto shared = lists.get("alice@example.test", "INBOX", 100, 1, whole(three));
  MessageList mine(shared);
  MessageList theirs(shared);
  mine.set_flags(1, "\\Seen", 2);
  mine.remove({0, 2});
  REQUIRE(mine.size() == 1);
  CHECK(mine[0].uid == 2);
  CHECK(mine[0].flags == "\\Seen");
  REQUIRE(theirs.size() == 3);
  CHECK(theirs[1].flags.empty());
  CHECK(lists.get("alice@example.test", "INBOX", 100, 1, whole([] { return Messages(); }))->size() == 3);
  theirs.clear();
  CHECK(theirs.empty());
}

TEST_CASE("After a change the shared list is brought up to date with what changed, not read whole") {
  MailboxLists lists;
  int wholes = 0;
  std::vector<std::uint64_t> asked;  // the change numbers changes were asked since
  std::optional<tern::sdk::MailboxChanges> answer;
  const ListSource source{[&] {
                            ++wholes;
                            return three();
                          },
                          [&](std::uint64_t since) {
                            asked.push_back(since);
                            return answer;
                          }};
  const auto first = lists.get("alice@example.test", "INBOX", 100, 7, source);
  CHECK(wholes == 1);
  // Since 7: UID 2 was flagged, UID 1 expunged and UID 4 delivered; the store is at 9 already.
  answer.emplace();
  answer->highestmodseq = 9;
  answer->changed.resize(2);
  answer->changed[0].uid = 2;
  answer->changed[0].flags = "\\Flagged";
  answer->changed[0].modseq = 8;
  answer->changed[1].uid = 4;
  answer->changed[1].modseq = 9;
  answer->expunged = {1};
  const auto second = lists.get("alice@example.test", "INBOX", 100, 8, source);
  CHECK(wholes == 1);
  CHECK(asked == std::vector<std::uint64_t>{7});
  REQUIRE(second->size() == 3);
  CHECK((*second)[0].uid == 2);
  CHECK((*second)[0].flags == "\\Flagged");
  CHECK((*second)[1].uid == 3);
  CHECK((*second)[1].id == 12);
  CHECK((*second)[2].uid == 4);
  // The first session's list is as it was.
  CHECK(first->size() == 3);
  CHECK((*first)[1].flags.empty());
  // The answer was current to 9: a session that read 9 shares it.
  CHECK(lists.get("alice@example.test", "INBOX", 100, 9, source) == second);
  CHECK(asked.size() == 1);
  // A store that cannot say what changed (its record of expunges does not go back so far) is read whole.
  answer.reset();
  const auto third = lists.get("alice@example.test", "INBOX", 100, 10, source);
  CHECK(wholes == 2);
  CHECK(asked == std::vector<std::uint64_t>{7, 9});
  CHECK(third->size() == 3);
}
