#include <unistd.h>

#include <fmt/format.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <set>
#include <thread>

#include <SQLiteCpp/SQLiteCpp.h>

#include "sqlite_store.hpp"
#include "store_queries.hpp"

namespace {

using tern::sdk::DirectoryError;
using tern::store_sqlite::SqliteStore;

struct TempDir {
  TempDir() {
    path = std::filesystem::temp_directory_path() /
           ("tern-store-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::filesystem::path path;
  static inline int counter = 0;
};

// Bodies as files (inline limit 0), so the tests can watch the files come and go; a removed message stays
// readable for `removed_readable` seconds (none unless a test asks).
struct Store {
  TempDir dir;
  SqliteStore store;
  explicit Store(std::int64_t removed_readable = 0)
      : store(dir.path / "tern.db", dir.path / "blobs", 0, SqliteStore::kDefaultExpungedKept, removed_readable) {
    store.directory().add_domain("example.test");
    store.directory().add_user("alice@example.test", "hash-a");
    store.directory().add_user("bob@example.test", "hash-b");
  }
  std::size_t blob_files() {
    std::size_t count = 0;
    for (const auto& entry : std::filesystem::recursive_directory_iterator(dir.path / "blobs")) {
      if (entry.is_regular_file() && entry.path().parent_path().filename() != "incoming") ++count;
    }
    return count;
  }
};

// Files `message` into `mailbox` of each of `users`, as the intake step would.
void deliver(tern::sdk::MailStore& store, std::string_view message, const std::vector<std::string>& users,
             const std::string& mailbox) {
  tern::sdk::Intake intake;
  for (const std::string& user : users) intake.filings.push_back({user, mailbox, ""});
  store.receive(message, intake);
}

}  // namespace

TEST_CASE("Domains are case-insensitive and listed once") {
  Store s;
  CHECK(s.store.directory().is_local_domain("EXAMPLE.test"));
  CHECK_FALSE(s.store.directory().is_local_domain("other.test"));
  CHECK_THROWS_AS(s.store.directory().add_domain("Example.Test"), DirectoryError);
  CHECK(s.store.directory().list_domains() == std::vector<std::string>{"example.test"});
}

TEST_CASE("A user needs a local domain, and a domain with users cannot be removed") {
  Store s;
  CHECK_THROWS_AS(s.store.directory().add_user("carol@other.test", "h"), DirectoryError);
  CHECK_THROWS_AS(s.store.directory().add_user("Alice@example.test", "h"), DirectoryError);
  CHECK_THROWS_AS(s.store.directory().remove_domain("example.test"), DirectoryError);
  s.store.directory().remove_user("alice@example.test");
  s.store.directory().remove_user("bob@example.test");
  s.store.directory().remove_domain("example.test");
  CHECK(s.store.directory().list_domains().empty());
}

TEST_CASE("Password hashes are stored and replaced") {
  Store s;
  CHECK(s.store.directory().password_hash("ALICE@example.test") == "hash-a");
  s.store.directory().set_password_hash("alice@example.test", "hash-a2");
  CHECK(s.store.directory().password_hash("alice@example.test") == "hash-a2");
  CHECK_FALSE(s.store.directory().password_hash("nobody@example.test"));
  CHECK_THROWS_AS(s.store.directory().set_password_hash("nobody@example.test", "x"), DirectoryError);
}

TEST_CASE("Recipients resolve through aliases to local users, each once") {
  Store s;
  s.store.directory().add_alias("team@example.test", "alice@example.test");
  s.store.directory().add_alias("team@example.test", "bob@example.test");
  s.store.directory().add_alias("all@example.test", "team@example.test");
  s.store.directory().add_alias("all@example.test", "alice@example.test");
  s.store.directory().add_alias("outside@example.test", "someone@elsewhere.test");
  CHECK(s.store.directory().resolve_recipient("Alice@Example.Test") == std::vector<std::string>{"alice@example.test"});
  CHECK(s.store.directory().resolve_recipient("team@example.test") ==
        std::vector<std::string>{"alice@example.test", "bob@example.test"});
  CHECK(s.store.directory().resolve_recipient("all@example.test") ==
        std::vector<std::string>{"alice@example.test", "bob@example.test"});
  CHECK(s.store.directory().resolve_recipient("nobody@example.test").empty());
  CHECK(s.store.directory().resolve_recipient("alice@other.test").empty());
  CHECK(s.store.directory().resolve_recipient("outside@example.test").empty());
  CHECK(s.store.directory().list_aliases("example.test").size() == 5);
}

TEST_CASE("Alias loops end instead of recursing forever") {
  Store s;
  s.store.directory().add_alias("a@example.test", "b@example.test");
  s.store.directory().add_alias("b@example.test", "a@example.test");
  CHECK(s.store.directory().resolve_recipient("a@example.test").empty());
}

TEST_CASE("A delivered message is read back byte for byte, with UIDs in order") {
  Store s;
  std::string first = "Subject: one\r\n\r\nbody\r\n";
  std::string second = "Subject: two\r\n\r\n\x00\xff binary\r\n";
  deliver(s.store, first, {"alice@example.test"}, "INBOX");
  deliver(s.store, second, {"alice@example.test"}, "INBOX");
  auto messages = s.store.mailboxes().list_messages("alice@example.test", "INBOX");
  REQUIRE(messages.size() == 2);
  CHECK(messages[0].uid < messages[1].uid);
  CHECK(messages[0].size == first.size());
  CHECK(s.store.mailboxes().read_message("alice@example.test", messages[0].id) == first);
  CHECK(s.store.mailboxes().read_message("alice@example.test", messages[1].id) == second);
  CHECK(messages[0].unique_id != messages[1].unique_id);
  CHECK(s.store.mailboxes().list_messages("bob@example.test", "INBOX").empty());
}

TEST_CASE("One stored copy is shared by every recipient and removed with the last reference") {
  Store s;
  deliver(s.store, "Subject: shared\r\n\r\nx\r\n", {"alice@example.test", "bob@example.test"}, "INBOX");
  CHECK(s.blob_files() == 1);
  auto alice = s.store.mailboxes().list_messages("alice@example.test", "INBOX");
  auto bob = s.store.mailboxes().list_messages("bob@example.test", "INBOX");
  REQUIRE(alice.size() == 1);
  REQUIRE(bob.size() == 1);
  s.store.mailboxes().remove_messages("alice@example.test", {alice[0].id});
  CHECK(s.blob_files() == 1);
  CHECK(s.store.mailboxes().read_message("bob@example.test", bob[0].id) == "Subject: shared\r\n\r\nx\r\n");
  s.store.mailboxes().remove_messages("bob@example.test", {bob[0].id});
  CHECK(s.blob_files() == 0);
}

TEST_CASE("A removed message stays readable by its owner for a while, and its body goes after that") {
  Store s(3600);
  deliver(s.store, "Subject: going\r\n\r\nx\r\n", {"alice@example.test"}, "INBOX");
  deliver(s.store, "Subject: staying\r\n\r\ny\r\n", {"alice@example.test"}, "INBOX");
  auto messages = s.store.mailboxes().list_messages("alice@example.test", "INBOX");
  REQUIRE(messages.size() == 2);
  s.store.mailboxes().remove_messages("alice@example.test", {messages[0].id});
  CHECK(s.store.mailboxes().list_messages("alice@example.test", "INBOX").size() == 1);
  const auto read = s.store.mailboxes().read_messages("alice@example.test", {messages[0].id, messages[1].id});
  CHECK(read[0] == "Subject: going\r\n\r\nx\r\n");
  CHECK(read[1] == "Subject: staying\r\n\r\ny\r\n");
  CHECK_FALSE(s.store.mailboxes().read_messages("bob@example.test", {messages[0].id})[0]);
  CHECK(s.blob_files() == 2);
  CHECK(s.store.mailboxes().quota("alice@example.test").messages_used == 1);

  Store at_once(0);
  deliver(at_once.store, "Subject: going\r\n\r\nx\r\n", {"alice@example.test"}, "INBOX");
  messages = at_once.store.mailboxes().list_messages("alice@example.test", "INBOX");
  at_once.store.mailboxes().remove_messages("alice@example.test", {messages[0].id});
  CHECK_FALSE(at_once.store.mailboxes().read_messages("alice@example.test", {messages[0].id})[0]);
  CHECK(at_once.blob_files() == 0);
}

TEST_CASE("A user cannot remove or read another user's message") {
  Store s;
  deliver(s.store, "Subject: private\r\n\r\nx\r\n", {"alice@example.test"}, "INBOX");
  auto alice = s.store.mailboxes().list_messages("alice@example.test", "INBOX");
  s.store.mailboxes().remove_messages("bob@example.test", {alice[0].id});
  CHECK(s.store.mailboxes().list_messages("alice@example.test", "INBOX").size() == 1);
  CHECK_THROWS_AS(s.store.mailboxes().read_message("bob@example.test", alice[0].id), tern::sdk::StoreError);
}

TEST_CASE("UIDs are never reused, and they survive reopening the database") {
  TempDir dir;
  std::vector<std::string> before;
  {
    SqliteStore store(dir.path / "tern.db", dir.path / "blobs");
    store.directory().add_domain("example.test");
    store.directory().add_user("alice@example.test", "h");
    deliver(store, "Subject: 1\r\n\r\n1\r\n", {"alice@example.test"}, "INBOX");
    deliver(store, "Subject: 2\r\n\r\n2\r\n", {"alice@example.test"}, "INBOX");
    auto messages = store.mailboxes().list_messages("alice@example.test", "INBOX");
    for (const auto& message : messages) before.push_back(message.unique_id);
    store.mailboxes().remove_messages("alice@example.test", {messages[1].id});
  }
  SqliteStore store(dir.path / "tern.db", dir.path / "blobs");
  auto kept = store.mailboxes().list_messages("alice@example.test", "INBOX");
  REQUIRE(kept.size() == 1);
  CHECK(kept[0].unique_id == before[0]);
  deliver(store, "Subject: 3\r\n\r\n3\r\n", {"alice@example.test"}, "INBOX");
  auto after = store.mailboxes().list_messages("alice@example.test", "INBOX");
  REQUIRE(after.size() == 2);
  CHECK(after[1].unique_id != before[1]);
  CHECK(after[1].uid > kept[0].uid + 1);
}

TEST_CASE("Delivery into a folder creates it for the user") {
  Store s;
  deliver(s.store, "Subject: spam\r\n\r\nx\r\n", {"alice@example.test"}, "Junk");
  CHECK(s.store.mailboxes().list_messages("alice@example.test", "Junk").size() == 1);
  CHECK(s.store.mailboxes().list_messages("alice@example.test", "INBOX").empty());
}

TEST_CASE("Removing a user removes their mail and its bodies") {
  Store s;
  deliver(s.store, "Subject: bye\r\n\r\nx\r\n", {"alice@example.test"}, "INBOX");
  s.store.directory().remove_user("alice@example.test");
  CHECK(s.blob_files() == 0);
  CHECK(s.store.directory().list_users("") == std::vector<std::string>{"bob@example.test"});
}

TEST_CASE("Small bodies live in the database and large ones in files, both read back exactly") {
  TempDir dir;
  SqliteStore store(dir.path / "tern.db", dir.path / "blobs", 100);
  store.directory().add_domain("example.test");
  store.directory().add_user("alice@example.test", "h");
  const std::string small = "Subject: small\r\n\r\nx\r\n";
  const std::string large = "Subject: large\r\n\r\n" + std::string(500, 'y') + "\r\n";
  deliver(store, small, {"alice@example.test"}, "INBOX");
  deliver(store, large, {"alice@example.test"}, "INBOX");
  std::size_t files = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir.path / "blobs")) {
    if (entry.is_regular_file()) ++files;
  }
  CHECK(files == 1);
  auto messages = store.mailboxes().list_messages("alice@example.test", "INBOX");
  REQUIRE(messages.size() == 2);
  CHECK(store.mailboxes().read_message("alice@example.test", messages[0].id) == small);
  CHECK(store.mailboxes().read_message("alice@example.test", messages[1].id) == large);
}

TEST_CASE("Deliveries from many threads at once all land, each once, with distinct UIDs") {
  TempDir dir;
  SqliteStore store(dir.path / "tern.db", dir.path / "blobs");
  store.directory().add_domain("example.test");
  store.directory().add_user("alice@example.test", "h");
  store.directory().add_user("bob@example.test", "h");
  constexpr int kThreads = 16;
  constexpr int kEach = 20;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&store, t] {
      for (int i = 0; i < kEach; ++i) {
        std::string message = "Subject: " + std::to_string(t) + "." + std::to_string(i) + "\r\n\r\nbody\r\n";
        deliver(store, message, {"alice@example.test", "bob@example.test"}, "INBOX");
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (const char* user : {"alice@example.test", "bob@example.test"}) {
    auto messages = store.mailboxes().list_messages(user, "INBOX");
    REQUIRE(messages.size() == kThreads * kEach);
    std::set<std::uint32_t> uids;
    std::set<std::string> subjects;
    for (const auto& message : messages) {
      uids.insert(message.uid);
      subjects.insert(store.mailboxes().read_message(user, message.id).substr(0, 16));
    }
    CHECK(uids.size() == messages.size());
    CHECK(subjects.size() == messages.size());
  }
}

TEST_CASE("A delivery to a removed user fails alone; the rest of its batch lands") {
  TempDir dir;
  SqliteStore store(dir.path / "tern.db", dir.path / "blobs");
  store.directory().add_domain("example.test");
  store.directory().add_user("alice@example.test", "h");
  CHECK_THROWS_AS(deliver(store, "Subject: x\r\n\r\nx\r\n", {"ghost@example.test"}, "INBOX"), tern::sdk::StoreError);
  deliver(store, "Subject: y\r\n\r\ny\r\n", {"alice@example.test"}, "INBOX");
  CHECK(store.mailboxes().list_messages("alice@example.test", "INBOX").size() == 1);
}

TEST_CASE("Remote recipients go on the outbound queue in the same commit, with their DSN requests") {
  Store s;
  tern::sdk::Intake intake;
  intake.filings = {{"alice@example.test"}};
  intake.sender = "alice@example.test";
  intake.remote = {{"friend@remote.test", "SUCCESS,FAILURE", "rfc822;friend@remote.test"},
                   {"other@remote.test", "", ""}};
  intake.ret = "HDRS";
  intake.envid = "ID1";
  s.store.receive("Subject: out\r\n\r\nx\r\n", intake);
  auto queue = s.store.queue().list();
  REQUIRE(queue.size() == 1);
  CHECK(queue[0].sender == "alice@example.test");
  REQUIRE(queue[0].recipients.size() == 2);
  CHECK(queue[0].recipients[0].notify == "SUCCESS,FAILURE");
  CHECK(queue[0].recipients[0].orcpt == "rfc822;friend@remote.test");
  CHECK(s.store.mailboxes().list_messages("alice@example.test", "INBOX").size() == 1);
  auto alice = s.store.mailboxes().list_messages("alice@example.test", "INBOX");
  s.store.mailboxes().remove_messages("alice@example.test", {alice[0].id});
  CHECK(s.blob_files() == 1);  // the queue still holds the body
}

TEST_CASE("Every user starts with INBOX and the special-use mailboxes, with counts") {
  Store s;
  deliver(s.store, "Subject: a\r\n\r\na\r\n", {"alice@example.test"}, "INBOX");
  auto mailboxes = s.store.mailboxes().list_mailboxes("alice@example.test");
  REQUIRE(mailboxes.size() == 6);
  CHECK(mailboxes[0].name == "INBOX");
  CHECK(mailboxes[0].messages == 1);
  CHECK(mailboxes[0].unseen == 1);
  CHECK(mailboxes[0].uidnext == 2);
  std::set<std::string> uses;
  for (const auto& mailbox : mailboxes) uses.insert(mailbox.special_use);
  CHECK(uses == std::set<std::string>{"", "\\Sent", "\\Drafts", "\\Trash", "\\Junk", "\\Archive"});
}

TEST_CASE("Flags are added, removed and replaced, case-insensitively, and only for the owner") {
  Store s;
  deliver(s.store, "Subject: a\r\n\r\na\r\n", {"alice@example.test"}, "INBOX");
  const auto id = s.store.mailboxes().list_messages("alice@example.test", "INBOX")[0].id;
  using tern::sdk::FlagChange;
  auto changed = s.store.mailboxes()
                     .change_flags("alice@example.test", {id}, FlagChange::add, {"\\Seen", "$Work"}, std::nullopt)
                     .changed;
  REQUIRE(changed.size() == 1);
  CHECK(changed[0].flags == "\\Seen $Work");
  changed = s.store.mailboxes()
                .change_flags("alice@example.test", {id}, FlagChange::add, {"\\seen", "\\Flagged"}, std::nullopt)
                .changed;
  CHECK(changed[0].flags == "\\Seen $Work \\Flagged");
  changed =
      s.store.mailboxes().change_flags("alice@example.test", {id}, FlagChange::remove, {"$work"}, std::nullopt).changed;
  CHECK(changed[0].flags == "\\Seen \\Flagged");
  changed = s.store.mailboxes()
                .change_flags("alice@example.test", {id}, FlagChange::replace, {"\\Draft"}, std::nullopt)
                .changed;
  CHECK(changed[0].flags == "\\Draft");
  s.store.mailboxes().change_flags("bob@example.test", {id}, FlagChange::replace, {}, std::nullopt);
  CHECK(s.store.mailboxes().list_messages("alice@example.test", "INBOX")[0].flags == "\\Draft");
  CHECK(s.store.mailboxes().list_mailboxes("alice@example.test")[0].unseen == 1);
}

TEST_CASE("Mailboxes are created, renamed with their children, and deleted with their mail") {
  Store s;
  s.store.mailboxes().create_mailbox("alice@example.test", "Projects", "");
  s.store.mailboxes().create_mailbox("alice@example.test", "Projects/Tern", "");
  CHECK_THROWS_AS(s.store.mailboxes().create_mailbox("alice@example.test", "Projects", ""), DirectoryError);
  auto appended = s.store.mailboxes().append_message("alice@example.test", "Projects/Tern", "Subject: p\r\n\r\np\r\n",
                                                     "\\Seen", 1700000000);
  CHECK(appended.uid == 1);
  s.store.mailboxes().rename_mailbox("alice@example.test", "Projects", "Work");
  auto messages = s.store.mailboxes().list_messages("alice@example.test", "Work/Tern");
  REQUIRE(messages.size() == 1);
  CHECK(messages[0].flags == "\\Seen");
  CHECK(messages[0].received == 1700000000);
  CHECK_THROWS_AS(s.store.mailboxes().delete_mailbox("alice@example.test", "Work"), DirectoryError);
  auto [uidvalidity, copied] = s.store.mailboxes().copy_messages("alice@example.test", {messages[0].id}, "INBOX");
  REQUIRE(copied.size() == 1);
  CHECK(copied[0] == std::pair<std::uint32_t, std::uint32_t>{1, 1});
  CHECK(uidvalidity == s.store.mailboxes().list_mailboxes("alice@example.test")[0].uidvalidity);
  s.store.mailboxes().delete_mailbox("alice@example.test", "Work/Tern");
  CHECK(s.blob_files() == 1);  // the copy in INBOX still holds the body
  CHECK_THROWS_AS(s.store.mailboxes().delete_mailbox("alice@example.test", "INBOX"), DirectoryError);
  CHECK_THROWS_AS(s.store.mailboxes().append_message("alice@example.test", "Nowhere", "x", "", 0),
                  tern::sdk::StoreError);
}

TEST_CASE("Every change takes the mailbox's next change number, and UNCHANGEDSINCE guards a store") {
  Store s;
  using tern::sdk::FlagChange;
  deliver(s.store, "Subject: a\r\n\r\na\r\n", {"alice@example.test"}, "INBOX");
  deliver(s.store, "Subject: b\r\n\r\nb\r\n", {"alice@example.test"}, "INBOX");
  auto messages = s.store.mailboxes().list_messages("alice@example.test", "INBOX");
  const auto highest = [&] { return s.store.mailboxes().list_mailboxes("alice@example.test")[0].highestmodseq; };
  const std::uint64_t after_delivery = highest();
  CHECK(messages[1].modseq == after_delivery);
  CHECK(messages[0].modseq < messages[1].modseq);
  auto result = s.store.mailboxes().change_flags("alice@example.test", {messages[0].id}, FlagChange::add, {"\\Seen"},
                                                 std::nullopt);
  CHECK(result.changed[0].modseq == after_delivery + 1);
  CHECK(highest() == after_delivery + 1);
  // Storing what is there already changes nothing, not even the change number.
  result = s.store.mailboxes().change_flags("alice@example.test", {messages[0].id}, FlagChange::add, {"\\seen"},
                                            std::nullopt);
  CHECK(result.changed[0].modseq == after_delivery + 1);
  result = s.store.mailboxes().change_flags("alice@example.test", {messages[0].id, messages[1].id}, FlagChange::add,
                                            {"\\Flagged"}, after_delivery);
  CHECK(result.modified == std::vector<std::int64_t>{messages[0].id});
  REQUIRE(result.changed.size() == 1);
  CHECK(result.changed[0].flags == "\\Flagged");
  s.store.mailboxes().remove_messages("alice@example.test", {messages[1].id});
  CHECK(highest() == after_delivery + 3);
}

TEST_CASE("Expunged UIDs are kept with their change numbers, and the change number reads alone") {
  Store s;
  for (const char* subject : {"a", "b", "c"}) {
    deliver(s.store, fmt::format("Subject: {}\r\n\r\nx\r\n", subject), {"alice@example.test"}, "INBOX");
  }
  auto messages = s.store.mailboxes().list_messages("alice@example.test", "INBOX");
  const std::uint64_t before = s.store.mailboxes().mailbox_state("alice@example.test", "INBOX")->highestmodseq;
  CHECK(before == s.store.mailboxes().list_mailboxes("alice@example.test")[0].highestmodseq);
  CHECK_FALSE(s.store.mailboxes().mailbox_state("alice@example.test", "Nowhere"));
  CHECK_FALSE(s.store.mailboxes().mailbox_state("bob@example.test", "Nowhere"));
  s.store.mailboxes().remove_messages("alice@example.test", {messages[0].id});
  const std::uint64_t middle = s.store.mailboxes().mailbox_state("alice@example.test", "INBOX")->highestmodseq;
  s.store.mailboxes().remove_messages("alice@example.test", {messages[2].id});
  CHECK(s.store.mailboxes().expunged_since("alice@example.test", "INBOX", before) ==
        std::vector<std::uint32_t>{messages[0].uid, messages[2].uid});
  CHECK(s.store.mailboxes().expunged_since("alice@example.test", "INBOX", middle) ==
        std::vector<std::uint32_t>{messages[2].uid});
  CHECK(s.store.mailboxes().expunged_since("alice@example.test", "Sent", 0).empty());
  // Another user's mailbox of the same name knows nothing of them.
  CHECK(s.store.mailboxes().expunged_since("bob@example.test", "INBOX", 0).empty());
}

TEST_CASE("A quota counts every mailbox of its user and keeps its limits") {
  Store s;
  const std::string message = "Subject: q\r\n\r\nbody\r\n";
  deliver(s.store, message, {"alice@example.test"}, "INBOX");
  deliver(s.store, message, {"alice@example.test"}, "Archive");
  deliver(s.store, message, {"bob@example.test"}, "INBOX");
  auto quota = s.store.mailboxes().quota("Alice@Example.test");
  CHECK(quota.messages_used == 2);
  CHECK(quota.storage_used == 2 * message.size());
  CHECK(quota.storage_limit == 0);
  CHECK(quota.messages_limit == 0);
  s.store.mailboxes().set_quota("alice@example.test", 1'000'000, 50);
  s.store.mailboxes().set_quota("alice@example.test", 2'000'000, 60);
  quota = s.store.mailboxes().quota("alice@example.test");
  CHECK(quota.storage_limit == 2'000'000);
  CHECK(quota.messages_limit == 60);
  CHECK(s.store.mailboxes().quota("bob@example.test").messages_limit == 0);
  // Usage follows copies, expunges and deleted mailboxes.
  auto inbox = s.store.mailboxes().list_messages("alice@example.test", "INBOX");
  s.store.mailboxes().copy_messages("alice@example.test", {inbox[0].id}, "Sent");
  CHECK(s.store.mailboxes().quota("alice@example.test").messages_used == 3);
  s.store.mailboxes().remove_messages("alice@example.test", {inbox[0].id});
  s.store.mailboxes().create_mailbox("alice@example.test", "Old", "");
  deliver(s.store, message, {"alice@example.test"}, "Old");
  s.store.mailboxes().delete_mailbox("alice@example.test", "Old");
  quota = s.store.mailboxes().quota("alice@example.test");
  CHECK(quota.messages_used == 2);
  CHECK(quota.storage_used == 2 * message.size());
  CHECK(s.store.mailboxes().quota("bob@example.test").messages_used == 1);
  CHECK_THROWS_AS(s.store.mailboxes().quota("nobody@example.test"), DirectoryError);
  CHECK_THROWS_AS(s.store.mailboxes().set_quota("nobody@example.test", 1, 1), DirectoryError);
}

TEST_CASE("A database from before usage was counted gets its counts when it is opened") {
  TempDir dir;
  const std::string message = "Subject: q\r\n\r\nbody\r\n";
  {
    SqliteStore store(dir.path / "tern.db", dir.path / "blobs");
    store.directory().add_domain("example.test");
    store.directory().add_user("alice@example.test", "hash-a");
    deliver(store, message, {"alice@example.test"}, "INBOX");
    deliver(store, message, {"alice@example.test"}, "Sent");
  }
  {
    SQLite::Database db((dir.path / "tern.db").string(), SQLite::OPEN_READWRITE);
    db.exec("DROP TRIGGER usage_of_new_messages; DROP TRIGGER usage_of_removed_messages; DROP TABLE usage");
  }
  SqliteStore store(dir.path / "tern.db", dir.path / "blobs");
  const auto quota = store.mailboxes().quota("alice@example.test");
  CHECK(quota.messages_used == 2);
  CHECK(quota.storage_used == 2 * message.size());
}

TEST_CASE("The record of expunges is bounded, and past it every absent UID counts as expunged") {
  TempDir dir;
  SqliteStore store(dir.path / "tern.db", dir.path / "blobs", SqliteStore::kDefaultInlineLimit, 2);
  store.directory().add_domain("example.test");
  store.directory().add_user("alice@example.test", "hash-a");
  for (int i = 0; i < 8; ++i)
    deliver(store, fmt::format("Subject: {}\r\n\r\nx\r\n", i), {"alice@example.test"}, "INBOX");
  auto messages = store.mailboxes().list_messages("alice@example.test", "INBOX");
  const std::uint64_t start = store.mailboxes().mailbox_state("alice@example.test", "INBOX")->highestmodseq;
  // Expunge UIDs 1 to 5, one at a time: past 4 rows the oldest are forgotten down to 2.
  for (int i = 0; i < 5; ++i) store.mailboxes().remove_messages("alice@example.test", {messages[i].id});
  const std::uint64_t recent = store.mailboxes().mailbox_state("alice@example.test", "INBOX")->highestmodseq - 1;
  CHECK(store.mailboxes().expunged_since("alice@example.test", "INBOX", recent) ==
        std::vector<std::uint32_t>{messages[4].uid});
  // From before what is remembered: all absent UIDs below UIDNEXT (1 to 5 here), none of those still present.
  const std::vector<std::uint32_t> since_start = store.mailboxes().expunged_since("alice@example.test", "INBOX", start);
  CHECK(since_start == std::vector<std::uint32_t>{messages[0].uid, messages[1].uid, messages[2].uid, messages[3].uid,
                                                  messages[4].uid});
}

TEST_CASE("What changed since a change number is told at one moment, or not at all when it cannot be told") {
  TempDir dir;
  SqliteStore store(dir.path / "tern.db", dir.path / "blobs", SqliteStore::kDefaultInlineLimit, 2);
  store.directory().add_domain("example.test");
  store.directory().add_user("alice@example.test", "hash-a");
  for (int i = 0; i < 3; ++i)
    deliver(store, fmt::format("Subject: {}\r\n\r\nx\r\n", i), {"alice@example.test"}, "INBOX");
  using tern::sdk::FlagChange;
  auto& mailboxes = store.mailboxes();
  const auto messages = mailboxes.list_messages("alice@example.test", "INBOX");
  const tern::sdk::MailboxState start = *mailboxes.mailbox_state("alice@example.test", "INBOX");
  mailboxes.change_flags("alice@example.test", {messages[1].id}, FlagChange::add, {"\\Seen"}, std::nullopt);
  mailboxes.remove_messages("alice@example.test", {messages[0].id});
  deliver(store, "Subject: 3\r\n\r\nx\r\n", {"alice@example.test"}, "INBOX");
  const std::uint64_t now = mailboxes.mailbox_state("alice@example.test", "INBOX")->highestmodseq;

  auto changes = mailboxes.changes_since("Alice@example.test", "INBOX", start.uidvalidity, start.highestmodseq);
  REQUIRE(changes);
  CHECK(changes->highestmodseq == now);
  REQUIRE(changes->changed.size() == 2);
  CHECK(changes->changed[0].uid == messages[1].uid);
  CHECK(changes->changed[0].flags == "\\Seen");
  CHECK(changes->changed[1].uid == messages[2].uid + 1);
  CHECK(changes->changed[1].modseq == now);
  // Each entry is what list_messages() gives for it.
  const auto listed = mailboxes.list_messages("alice@example.test", "INBOX");
  CHECK(changes->changed[1].id == listed.back().id);
  CHECK(changes->changed[1].unique_id == listed.back().unique_id);
  CHECK(changes->changed[1].content_id == listed.back().content_id);
  CHECK(changes->expunged == std::vector<std::uint32_t>{messages[0].uid});
  changes = mailboxes.changes_since("alice@example.test", "INBOX", start.uidvalidity, now);
  REQUIRE(changes);
  CHECK(changes->changed.empty());
  CHECK(changes->expunged.empty());

  // Another UIDVALIDITY (a mailbox made again) or no such mailbox: it cannot be told.
  CHECK_FALSE(mailboxes.changes_since("alice@example.test", "INBOX", start.uidvalidity + 1, now));
  CHECK_FALSE(mailboxes.changes_since("alice@example.test", "Nowhere", start.uidvalidity, 0));
  CHECK_FALSE(mailboxes.changes_since("bob@example.test", "INBOX", start.uidvalidity, 0));
  // Nor from before what the record of expunges remembers (it keeps 2 here, and forgets past 4).
  const auto rest = mailboxes.list_messages("alice@example.test", "INBOX");
  for (const auto& message : rest) mailboxes.remove_messages("alice@example.test", {message.id});
  for (int i = 0; i < 3; ++i) {
    deliver(store, "Subject: y\r\n\r\nx\r\n", {"alice@example.test"}, "INBOX");
    mailboxes.remove_messages("alice@example.test",
                              {mailboxes.list_messages("alice@example.test", "INBOX").front().id});
  }
  CHECK_FALSE(mailboxes.changes_since("alice@example.test", "INBOX", start.uidvalidity, start.highestmodseq));
  const std::uint64_t last = mailboxes.mailbox_state("alice@example.test", "INBOX")->highestmodseq;
  changes = mailboxes.changes_since("alice@example.test", "INBOX", start.uidvalidity, last - 1);
  REQUIRE(changes);
  CHECK(changes->expunged.size() == 1);
}

TEST_CASE("A write waits while another process writes, instead of failing with \"database is locked\"") {
  Store s;
  deliver(s.store, "Subject: a\r\n\r\nx\r\n", {"alice@example.test"}, "INBOX");
  const auto messages = s.store.mailboxes().list_messages("alice@example.test", "INBOX");
  // Another process (the tern command line adding a user, say) holds the write lock for a moment.
  SQLite::Database other((s.dir.path / "tern.db").string(), SQLite::OPEN_READWRITE);
  other.exec("BEGIN IMMEDIATE");
  std::thread release([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    other.exec("COMMIT");
  });
  // A flag change reads before it writes: begun deferred, it would fail at its first write, at once.
  std::optional<tern::sdk::FlagResult> result;
  std::string failure;
  try {
    result = s.store.mailboxes().change_flags("alice@example.test", {messages[0].id}, tern::sdk::FlagChange::add,
                                              {"\\Seen"}, std::nullopt);
  } catch (const std::exception& error) {
    failure = error.what();
  }
  release.join();
  INFO(failure);
  REQUIRE(result);
  REQUIRE(result->changed.size() == 1);
  CHECK(result->changed[0].flags == "\\Seen");
}

TEST_CASE("Plugins' state is kept by space and key, and an intake's is written with its message or not at all") {
  Store s;
  s.store.state().put({{"fetch:isp", "uidl-1", "seen"}, {"fetch:isp", "uidl-0", "seen"}, {"greylist", "k", "v"}});
  CHECK(s.store.state().get("fetch:isp", "uidl-1") == "seen");
  CHECK_FALSE(s.store.state().get("fetch:isp", "uidl-9"));
  CHECK(s.store.state().list("fetch:isp") ==
        std::vector<std::pair<std::string, std::string>>{{"uidl-0", "seen"}, {"uidl-1", "seen"}});
  s.store.state().put({{"fetch:isp", "uidl-1", "seen 2"}});
  CHECK(s.store.state().get("fetch:isp", "uidl-1") == "seen 2");
  s.store.state().erase("fetch:isp", "uidl-0");
  CHECK(s.store.state().list("fetch:isp").size() == 1);

  tern::sdk::Intake intake;
  intake.filings = {{"alice@example.test"}};
  intake.state = {{"fetch:isp", "uidl-2", "seen"}};
  s.store.receive("Subject: fetched\r\n\r\nx\r\n", intake);
  CHECK(s.store.state().get("fetch:isp", "uidl-2") == "seen");
  // A delivery that fails (no such user) leaves its state unwritten too.
  intake.filings = {{"nobody@example.test"}};
  intake.state = {{"fetch:isp", "uidl-3", "seen"}};
  CHECK_THROWS(s.store.receive("Subject: lost\r\n\r\nx\r\n", intake));
  CHECK_FALSE(s.store.state().get("fetch:isp", "uidl-3"));
}

TEST_CASE("An expired state entry reads as absent at once, and pruning deletes the expired ones only") {
  Store s;
  const std::int64_t now = tern::store_sqlite::now_seconds();
  s.store.state().put({{"greylist", "old", "1", now - 10},
                       {"greylist", "fresh", "2", now + 3600},
                       {"greylist", "kept", "3"},
                       {"greylist", "older", "4", now - 20}});
  CHECK_FALSE(s.store.state().get("greylist", "old"));
  CHECK(s.store.state().get("greylist", "fresh") == "2");
  CHECK(s.store.state().list("greylist") ==
        std::vector<std::pair<std::string, std::string>>{{"fresh", "2"}, {"kept", "3"}});
  // Writing an entry again gives it the new expiry.
  s.store.state().put({{"greylist", "old", "5", now + 60}});
  CHECK(s.store.state().get("greylist", "old") == "5");
  CHECK(s.store.state().prune(now, 1000) == 1);
  CHECK(s.store.state().prune(now, 1000) == 0);
  SQLite::Database db((s.dir.path / "tern.db").string());
  CHECK(db.execAndGet("SELECT count(*) FROM state").getInt() == 3);
  // A limit bounds each pass, so a large backlog is pruned in steps without one long transaction.
  std::vector<tern::sdk::StateChange> many;
  for (int i = 0; i < 25; ++i) many.push_back({"greylist", "k" + std::to_string(i), "v", now - 1});
  s.store.state().put(many);
  CHECK(s.store.state().prune(now, 10) == 10);
  CHECK(s.store.state().prune(now, 100) == 15);
}

namespace {

tern::sdk::Intake outbound(std::vector<std::string> recipients) {
  tern::sdk::Intake intake;
  intake.sender = "alice@example.test";
  for (std::string& address : recipients) intake.remote.push_back({std::move(address), "", ""});
  return intake;
}

}  // namespace

TEST_CASE("A claimed queue entry is leased: nobody else is handed it until it is written back or the lease ends") {
  Store s;
  s.store.receive("Subject: out\r\n\r\nx\r\n", outbound({"a@one.test"}));
  const std::int64_t now = tern::store_sqlite::now_seconds();
  auto claimed = s.store.queue().claim(now, now + 600, 10);
  REQUIRE(claimed.size() == 1);
  CHECK(claimed[0].recipients[0].status == tern::sdk::DeliveryStatus::pending);
  CHECK(s.store.queue().read(claimed[0].id) == "Subject: out\r\n\r\nx\r\n");
  CHECK(s.store.queue().claim(now, now + 600, 10).empty());
  // A flush makes it due but does not break the lease of the deliverer at work.
  s.store.queue().flush("", now);
  CHECK(s.store.queue().claim(now, now + 600, 10).empty());
  CHECK(s.store.queue().claim(now + 601, now + 1200, 10).size() == 1);  // its deliverer died
}

TEST_CASE("Writing back a deferral keeps the entry for its next attempt; the last recipient done removes it") {
  Store s;
  s.store.receive("Subject: out\r\n\r\nx\r\n", outbound({"a@one.test", "b@two.test"}));
  const std::int64_t now = tern::store_sqlite::now_seconds();
  auto entry = s.store.queue().claim(now, now + 600, 10).at(0);
  entry.recipients[0].status = tern::sdk::DeliveryStatus::delivered;
  entry.recipients[0].diagnostic = "250 2.0.0 ok";
  entry.recipients[1].diagnostic = "451 4.3.0 later";
  entry.recipients[1].remote_host = "mx.two.test[127.0.0.2]";
  entry.attempts = 1;
  entry.next_attempt = now + 300;
  s.store.queue().update({entry});
  auto listed = s.store.queue().entry(entry.id);
  REQUIRE(listed);
  CHECK(listed->attempts == 1);
  CHECK(listed->recipients[0].status == tern::sdk::DeliveryStatus::delivered);
  CHECK(listed->recipients[1].diagnostic == "451 4.3.0 later");
  CHECK(listed->recipients[1].remote_host == "mx.two.test[127.0.0.2]");
  CHECK(s.store.queue().claim(now, now + 600, 10).empty());
  auto again = s.store.queue().claim(now + 300, now + 900, 10).at(0);
  again.recipients[1].status = tern::sdk::DeliveryStatus::failed;
  s.store.queue().update({again});
  CHECK(s.store.queue().list().empty());
  CHECK(s.blob_files() == 0);
}

TEST_CASE("Held recipients wait for a flush of their domain; a held entry waits for its release") {
  Store s;
  s.store.receive("Subject: out\r\n\r\nx\r\n", outbound({"a@part-time.test"}));
  s.store.receive("Subject: out\r\n\r\ny\r\n", outbound({"b@other.test"}));
  const std::int64_t now = tern::store_sqlite::now_seconds();
  auto claimed = s.store.queue().claim(now, now + 600, 10);
  REQUIRE(claimed.size() == 2);
  claimed[0].recipients[0].status = tern::sdk::DeliveryStatus::held;
  claimed[0].next_attempt = now + 86400;
  claimed[1].next_attempt = now + 300;
  s.store.queue().update(claimed);
  CHECK(s.store.queue().flush("PART-TIME.test", now) == 1);
  auto due = s.store.queue().claim(now, now + 600, 10);
  REQUIRE(due.size() == 1);
  CHECK(due[0].recipients[0].address == "a@part-time.test");
  CHECK(due[0].recipients[0].status == tern::sdk::DeliveryStatus::released);

  CHECK(s.store.queue().hold(claimed[1].id, true));
  CHECK(s.store.queue().flush("", now) == 0);
  CHECK(s.store.queue().claim(now + 301, now + 900, 10).empty());
  CHECK(s.store.queue().hold(claimed[1].id, false));
  CHECK(s.store.queue().claim(now + 301, now + 900, 10).size() == 1);
  CHECK_FALSE(s.store.queue().hold(999, true));
  CHECK(s.store.queue().remove(claimed[1].id));
  CHECK_FALSE(s.store.queue().remove(claimed[1].id));
}

TEST_CASE("An alias forwards outside the local domains, and a catch-all takes what nobody else does") {
  Store s;
  s.store.directory().add_alias("team@example.test", "alice@example.test");
  s.store.directory().add_alias("team@example.test", "friend@remote.test");
  s.store.directory().add_alias("@example.test", "bob@example.test");
  const tern::sdk::RecipientExpansion team = s.store.directory().expand_recipient("Team@example.test");
  CHECK(team.local_users == std::vector<std::string>{"alice@example.test"});
  CHECK(team.forwards == std::vector<std::string>{"friend@remote.test"});
  CHECK(team.aliases == std::vector<std::string>{"team@example.test"});
  CHECK(s.store.directory().resolve_recipient("nobody@example.test") == std::vector<std::string>{"bob@example.test"});
  // A user is a user: the catch-all is not asked.
  CHECK(s.store.directory().resolve_recipient("alice@example.test") == std::vector<std::string>{"alice@example.test"});
  const tern::sdk::RecipientExpansion plain = s.store.directory().expand_recipient("alice@example.test");
  CHECK(plain.forwards.empty());
  CHECK(plain.aliases.empty());
}

TEST_CASE("A flush while an entry is out is not undone by what its deliverer writes back") {
  Store s;
  s.store.receive("Subject: out\r\n\r\nx\r\n", outbound({"a@Part-Time.test"}));
  const std::int64_t now = tern::store_sqlite::now_seconds();
  auto entry = s.store.queue().claim(now, now + 600, 10).at(0);
  entry.recipients[0].status = tern::sdk::DeliveryStatus::held;
  entry.next_attempt = now + 86400;
  s.store.queue().update({entry});
  // Released, claimed, and deferred again: back to held, not due.
  CHECK(s.store.queue().flush("part-time.TEST", now) == 1);
  auto released = s.store.queue().claim(now, now + 600, 10).at(0);
  CHECK(released.recipients[0].status == tern::sdk::DeliveryStatus::released);
  released.recipients[0].status = tern::sdk::DeliveryStatus::held;
  released.next_attempt = now + 86400;
  s.store.queue().update({released});
  CHECK(s.store.queue().entry(released.id)->recipients[0].status == tern::sdk::DeliveryStatus::held);
  CHECK(s.store.queue().flush("part-time.test", now) == 1);
  // ...unless the domain was flushed again while it was out: then it stays released and due.
  auto again = s.store.queue().claim(now, now + 600, 10).at(0);
  again.recipients[0].status = tern::sdk::DeliveryStatus::held;
  again.next_attempt = now + 86400;
  CHECK(s.store.queue().flush("part-time.test", now) == 1);
  s.store.queue().update({again});
  const auto after = s.store.queue().entry(again.id);
  CHECK(after->recipients[0].status == tern::sdk::DeliveryStatus::released);
  CHECK(after->next_attempt <= now);
}
