// The embedded default store: one SQLite database (WAL) behind the four parts of sdk::MailStore, bodies inline or
// as files. database.cpp holds the schema and receive.cpp the group commit that files mail; each part has its
// file: sqlite_directory.cpp, sqlite_mailboxes.cpp, sqlite_queue.cpp, sqlite_state.cpp.
#pragma once

#include <filesystem>
#include <unordered_map>

#include "database.hpp"
#include "tern/sdk/store.hpp"

namespace tern::store_sqlite {

class SqliteDirectory final : public sdk::Directory {
 public:
  explicit SqliteDirectory(Database& db) : db_(db) {}
  bool is_local_domain(std::string_view domain) override;
  void add_domain(std::string_view domain) override;
  void remove_domain(std::string_view domain) override;
  std::vector<std::string> list_domains() override;
  void add_user(std::string_view address, std::string_view password_hash) override;
  void set_password_hash(std::string_view address, std::string_view password_hash) override;
  void remove_user(std::string_view address) override;
  std::vector<std::string> list_users(std::string_view domain) override;
  std::optional<std::string> password_hash(std::string_view address) override;
  void add_alias(std::string_view source, std::string_view target) override;
  void remove_alias(std::string_view source, std::string_view target) override;
  std::vector<sdk::AliasEntry> list_aliases(std::string_view domain) override;
  sdk::RecipientExpansion expand_recipient(std::string_view address) override;

 private:
  Database& db_;
};

class SqliteMailboxes final : public sdk::Mailboxes {
 public:
  explicit SqliteMailboxes(Database& db) : db_(db) {}
  sdk::QuotaInfo quota(std::string_view address) override;
  void set_quota(std::string_view address, std::uint64_t storage_limit, std::uint64_t messages_limit) override;
  std::vector<sdk::MailboxInfo> list_mailboxes(std::string_view user) override;
  sdk::MessageEntry append_message(std::string_view user, std::string_view mailbox, std::string_view message,
                                   std::string_view flags, std::int64_t received) override;
  std::pair<std::uint32_t, std::vector<std::pair<std::uint32_t, std::uint32_t>>> copy_messages(
      std::string_view user, const std::vector<std::int64_t>& ids, std::string_view mailbox) override;
  void create_mailbox(std::string_view user, std::string_view mailbox, std::string_view special_use) override;
  void delete_mailbox(std::string_view user, std::string_view mailbox) override;
  void rename_mailbox(std::string_view user, std::string_view from, std::string_view to) override;
  sdk::FlagResult change_flags(std::string_view user, const std::vector<std::int64_t>& ids, sdk::FlagChange change,
                               const std::vector<std::string>& flags,
                               std::optional<std::uint64_t> unchanged_since) override;
  std::vector<sdk::MessageEntry> list_messages(std::string_view user, std::string_view mailbox) override;
  std::optional<sdk::MailboxState> mailbox_state(std::string_view user, std::string_view mailbox) override;
  std::vector<std::uint32_t> expunged_since(std::string_view user, std::string_view mailbox,
                                            std::uint64_t modseq) override;
  std::optional<sdk::MailboxChanges> changes_since(std::string_view user, std::string_view mailbox,
                                                   std::uint32_t uidvalidity, std::uint64_t modseq) override;
  std::string read_message(std::string_view user, std::int64_t id) override;
  std::vector<std::optional<std::string>> read_messages(std::string_view user,
                                                        const std::vector<std::int64_t>& ids) override;
  void remove_messages(std::string_view user, const std::vector<std::int64_t>& ids) override;

 private:
  // Within remove_messages' transaction: past twice db_.expunged_kept expunges, a mailbox keeps its newest
  // db_.expunged_kept and remembers up to which change number it forgot (see expunged_since()). Looking costs
  // a walk of up to twice expunged_kept rows, so a mailbox looks once every quarter of expunged_kept expunges
  // (counted in unchecked_expunges_, under write_mutex, since the process started).
  void bound_expunged(std::int64_t mailbox);
  // With write_mutex held: the bodies of messages removed longer than db_.removed_readable ago lose their
  // reference; returns the blobs nobody references any more, whose files the caller removes.
  std::vector<std::string> release_removed(std::int64_t now);

  Database& db_;
  std::unordered_map<std::int64_t, std::size_t> unchecked_expunges_;  // by mailbox id
};

class SqliteQueue final : public sdk::Queue {
 public:
  explicit SqliteQueue(Database& db) : db_(db) {}
  std::vector<sdk::QueueEntry> list() override;
  std::optional<sdk::QueueEntry> entry(std::int64_t id) override;
  std::vector<sdk::QueueEntry> claim(std::int64_t now, std::int64_t lease_until, std::size_t limit) override;
  std::string read(std::int64_t id) override;
  void update(const std::vector<sdk::QueueEntry>& entries) override;
  bool remove(std::int64_t id) override;
  bool hold(std::int64_t id, bool held) override;
  std::size_t flush(std::string_view domain, std::int64_t now) override;

 private:
  Database& db_;
};

class SqliteState final : public sdk::State {
 public:
  explicit SqliteState(Database& db) : db_(db) {}
  std::optional<std::string> get(std::string_view space, std::string_view key) override;
  std::vector<std::pair<std::string, std::string>> list(std::string_view space) override;
  void put(const std::vector<sdk::StateChange>& changes) override;
  void erase(std::string_view space, std::string_view key) override;
  std::size_t prune(std::int64_t now, std::size_t limit) override;

 private:
  Database& db_;
};

class SqliteStore final : public sdk::MailStore {
 public:
  // Opens the database and the blob folder (see Database).
  SqliteStore(const std::filesystem::path& database, const std::filesystem::path& blobs,
              std::size_t inline_limit = kDefaultInlineLimit, std::size_t expunged_kept = kDefaultExpungedKept,
              std::int64_t removed_readable = kDefaultRemovedReadable)
      : db_(database, blobs, inline_limit, expunged_kept, removed_readable) {}

  static constexpr std::size_t kDefaultInlineLimit = 64 * 1024;
  static constexpr std::size_t kDefaultExpungedKept = 10'000;
  // An hour: IMAP sessions hear of an expunge at their next command, or at once in IDLE (see Database).
  static constexpr std::int64_t kDefaultRemovedReadable = 3600;

  sdk::Directory& directory() override { return directory_; }
  sdk::Mailboxes& mailboxes() override { return mailboxes_; }
  sdk::Queue& queue() override { return queue_; }
  sdk::State& state() override { return state_; }
  void receive(std::string_view message, const sdk::Intake& intake) override { db_.file(message, intake); }

 private:
  Database db_;
  SqliteDirectory directory_{db_};
  SqliteMailboxes mailboxes_{db_};
  SqliteQueue queue_{db_};
  SqliteState state_{db_};
};

}  // namespace tern::store_sqlite
