#include <catch2/catch.hpp>

#include "message_list.hpp"

namespace {

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

}  // namespace

TEST_CASE("Sessions at the same change number share one list, loaded once") {
  MailboxLists lists;
  int loads = 0;
  const auto load = [&] {
    ++loads;
    return three();
  };
  auto first = lists.get("alice@example.test", "INBOX", 100, 7, load);
  auto second = lists.get("alice@example.test", "INBOX", 100, 7, load);
  CHECK(loads == 1);
  CHECK(first == second);
  // Another mailbox, or a newer change number, is read anew.
  lists.get("alice@example.test", "Sent", 100, 7, load);
  auto newer = lists.get("alice@example.test", "INBOX", 100, 8, load);
  CHECK(loads == 3);
  CHECK(newer != first);
  // Once nobody holds a list it is gone, and read again when asked for.
  first.reset();
  second.reset();
  newer.reset();
  const auto held = lists.get("alice@example.test", "INBOX", 100, 8, load);
  CHECK(loads == 4);
  // A mailbox deleted and made again (another UIDVALIDITY) at the same change number is another list.
  const auto other = lists.get("alice@example.test", "INBOX", 101, 8, load);
  CHECK(loads == 5);
  CHECK(other != held);
}

TEST_CASE("A session's change is its own: the shared list and other sessions keep theirs") {
  MailboxLists lists;
  auto shared = lists.get("alice@example.test", "INBOX", 100, 1, three);
  MessageList mine(shared);
  MessageList theirs(shared);
  mine.set_flags(1, "\\Seen", 2);
  mine.remove({0, 2});
  REQUIRE(mine.size() == 1);
  CHECK(mine[0].uid == 2);
  CHECK(mine[0].flags == "\\Seen");
  REQUIRE(theirs.size() == 3);
  CHECK(theirs[1].flags.empty());
  CHECK(lists.get("alice@example.test", "INBOX", 100, 1, [] { return Messages(); })->size() == 3);
  theirs.clear();
  CHECK(theirs.empty());
}
