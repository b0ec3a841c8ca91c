// The embedded default store: one SQLite database (WAL) for the directory and mailboxes, bodies inline or as
// files. sqlite_store.cpp holds the schema and the directory, sqlite_mail.cpp the mail.
#pragma once

#include <filesystem>
#include <memory>
#include <mutex>

#include "blob_files.hpp"
#include "delivery_batch.hpp"
#include "tern/sdk/store.hpp"

namespace SQLite {
class Database;
}

namespace tern::store_sqlite {

class SqliteStore final : public sdk::MailStore {
 public:
  // Opens or creates the database at `database` and the blob folder at `blobs`. Bodies up to `inline_limit`
  // octets are kept in the database, larger ones as files. Each mailbox remembers at least its last
  // `expunged_kept` expunged UIDs with their change numbers (QRESYNC). Throws sdk::StoreError.
  SqliteStore(const std::filesystem::path& database, const std::filesystem::path& blobs,
              std::size_t inline_limit = kDefaultInlineLimit, std::size_t expunged_kept = kDefaultExpungedKept);

  static constexpr std::size_t kDefaultInlineLimit = 64 * 1024;
  static constexpr std::size_t kDefaultExpungedKept = 10'000;
  ~SqliteStore() override;

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
  std::optional<std::string> state_get(std::string_view space, std::string_view key) override;
  std::vector<std::pair<std::string, std::string>> state_list(std::string_view space) override;
  void state_put(const std::vector<sdk::StateChange>& changes) override;
  void state_erase(std::string_view space, std::string_view key) override;
  sdk::QuotaInfo quota(std::string_view address) override;
  void set_quota(std::string_view address, std::uint64_t storage_limit, std::uint64_t messages_limit) override;

  void receive(std::string_view message, const sdk::Intake& intake) override;
  std::vector<sdk::QueueEntry> list_queue() override;
  std::optional<sdk::QueueEntry> queue_entry(std::int64_t id) override;
  std::vector<sdk::QueueEntry> claim_queue(std::int64_t now, std::int64_t lease_until, std::size_t limit) override;
  std::string read_queued(std::int64_t id) override;
  void update_queue(const std::vector<sdk::QueueEntry>& entries) override;
  bool remove_queued(std::int64_t id) override;
  bool hold_queued(std::int64_t id, bool held) override;
  std::size_t flush_queue(std::string_view domain, std::int64_t now) override;
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
  std::string read_message(std::string_view user, std::int64_t id) override;
  std::vector<std::optional<std::string>> read_messages(std::string_view user,
                                                        const std::vector<std::int64_t>& ids) override;
  void remove_messages(std::string_view user, const std::vector<std::int64_t>& ids) override;

 private:
  // Drops one reference from each blob; returns the blobs nobody references any more (rows deleted).
  std::vector<std::string> release_blobs(const std::vector<std::string>& hashes);
  // receive(), returning the UID of the last copy filed (APPEND files one).
  std::uint32_t file(std::string_view message, const sdk::Intake& intake);
  // Commits a batch of deliveries in one transaction; never throws (errors go to each Delivery).
  void commit_batch(const std::vector<Delivery*>& batch);

  // One connection, used by one thread at a time: SQLite writes one transaction at a time anyway. A batch
  // rewrites a body file it is the first to reference, under this lock, so a removal that unlinked it after
  // the delivery found it cannot leave a message without its body.
  std::mutex mutex_;
  std::unique_ptr<SQLite::Database> db_;
  std::mutex read_mutex_;
  std::unique_ptr<SQLite::Database> reader_;
  BlobFiles blobs_;
  std::size_t inline_limit_;
  std::size_t expunged_kept_;
  DeliveryBatcher batcher_;
};

}  // namespace tern::store_sqlite
