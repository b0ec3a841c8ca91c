// The SQLite store's database: its schema (made, or brought up to date from an earlier version's) and the two
// connections every part of the store uses.
#include "database.hpp"

#include <fmt/format.h>

#include <SQLiteCpp/SQLiteCpp.h>

#include "store_queries.hpp"

namespace tern::store_sqlite {
namespace {

// Read connections: enough for the reads of a few sessions at once on a small machine; each one costs a page
// cache of its own, emptied whenever another connection commits.
constexpr std::size_t kReaders = 4;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS domains (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS users (
  id INTEGER PRIMARY KEY,
  address TEXT NOT NULL UNIQUE,
  domain_id INTEGER NOT NULL REFERENCES domains(id),
  password_hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS aliases (
  id INTEGER PRIMARY KEY,
  source TEXT NOT NULL,
  target TEXT NOT NULL,
  domain_id INTEGER NOT NULL REFERENCES domains(id),
  UNIQUE (source, target));
CREATE TABLE IF NOT EXISTS mailboxes (
  id INTEGER PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  uidvalidity INTEGER NOT NULL,
  uidnext INTEGER NOT NULL DEFAULT 1,
  special_use TEXT NOT NULL DEFAULT '',
  highestmodseq INTEGER NOT NULL DEFAULT 1,
  UNIQUE (user_id, name));
CREATE TABLE IF NOT EXISTS blobs (
  hash TEXT PRIMARY KEY,
  size INTEGER NOT NULL,
  refs INTEGER NOT NULL,
  body BLOB);
CREATE TABLE IF NOT EXISTS queue (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  blob TEXT NOT NULL REFERENCES blobs(hash),
  sender TEXT NOT NULL,
  ret TEXT NOT NULL,
  envid TEXT NOT NULL,
  size INTEGER NOT NULL,
  created INTEGER NOT NULL,
  next_attempt INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  held INTEGER NOT NULL DEFAULT 0,
  delay_notified INTEGER NOT NULL DEFAULT 0,
  smtputf8 INTEGER NOT NULL DEFAULT 0,
  leased_until INTEGER NOT NULL DEFAULT 0,
  flushed INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS queue_by_next_attempt ON queue (next_attempt);
CREATE TABLE IF NOT EXISTS queue_recipients (
  queue_id INTEGER NOT NULL REFERENCES queue(id) ON DELETE CASCADE,
  address TEXT NOT NULL,
  notify TEXT NOT NULL,
  orcpt TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending',
  diagnostic TEXT NOT NULL DEFAULT '',
  remote_host TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS queue_recipients_by_entry ON queue_recipients (queue_id);
CREATE TABLE IF NOT EXISTS messages (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
  uid INTEGER NOT NULL,
  blob TEXT NOT NULL REFERENCES blobs(hash),
  size INTEGER NOT NULL,
  received INTEGER NOT NULL,
  flags TEXT NOT NULL DEFAULT '',
  modseq INTEGER NOT NULL DEFAULT 1,
  UNIQUE (mailbox_id, uid));
CREATE INDEX IF NOT EXISTS messages_by_modseq ON messages (mailbox_id, modseq);
CREATE TABLE IF NOT EXISTS expunged (
  mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
  uid INTEGER NOT NULL,
  modseq INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS expunged_by_modseq ON expunged (mailbox_id, modseq);
CREATE TABLE IF NOT EXISTS removed (
  id INTEGER PRIMARY KEY,
  user_id INTEGER NOT NULL,
  blob TEXT NOT NULL,
  removed INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS removed_by_time ON removed (removed);
CREATE TABLE IF NOT EXISTS usage (
  user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
  octets INTEGER NOT NULL,
  messages INTEGER NOT NULL);
CREATE TRIGGER IF NOT EXISTS usage_of_new_messages AFTER INSERT ON messages BEGIN
  INSERT INTO usage (user_id, octets, messages) SELECT user_id, NEW.size, 1 FROM mailboxes WHERE id = NEW.mailbox_id
    ON CONFLICT (user_id) DO UPDATE SET octets = octets + excluded.octets, messages = messages + 1;
END;
CREATE TRIGGER IF NOT EXISTS usage_of_removed_messages AFTER DELETE ON messages BEGIN
  UPDATE usage SET octets = octets - OLD.size, messages = messages - 1
    WHERE user_id = (SELECT user_id FROM mailboxes WHERE id = OLD.mailbox_id);
END;
CREATE TABLE IF NOT EXISTS state (
  space TEXT NOT NULL,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  expires INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (space, key));
CREATE TABLE IF NOT EXISTS counters (
  name TEXT PRIMARY KEY,
  value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS quotas (
  user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
  storage_limit INTEGER NOT NULL,
  messages_limit INTEGER NOT NULL);
)sql";

}  // namespace

Database::Database(const std::filesystem::path& path, const std::filesystem::path& blobs_folder,
                   std::size_t inline_limit_octets, std::size_t expunged_to_keep, std::int64_t removed_seconds)
    : blobs(blobs_folder),
      inline_limit(inline_limit_octets),
      expunged_kept(expunged_to_keep),
      removed_readable(removed_seconds) {
  guarded("open database", [&] {
    // NOMUTEX: each connection is used under a mutex of its own already; SQLite's would be a second one.
    writer = std::make_unique<Connection>(path.string(),
                                          SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE | SQLite::OPEN_NOMUTEX);
    writer->setBusyTimeout(5000);
    writer->exec("PRAGMA journal_mode = WAL");
    // FULL: a commit is durable when it returns, which is what "250 OK" promises.
    writer->exec("PRAGMA synchronous = FULL");
    writer->exec("PRAGMA foreign_keys = ON");
    // A database made before usage was counted gets its counts once, as the table is made.
    const bool counted = writer->execAndGet("SELECT count(*) FROM sqlite_master WHERE name = 'usage'").getInt() > 0;
    writer->exec(kSchema);
    if (!counted) {
      writer->exec(
          "INSERT OR REPLACE INTO usage (user_id, octets, messages) SELECT b.user_id, sum(m.size), count(*) "
          "FROM messages m JOIN mailboxes b ON m.mailbox_id = b.id GROUP BY b.user_id");
    }
    // Databases made by earlier versions lack these columns.
    const auto add_column = [this](const char* table, const char* column, const char* definition) {
      const std::string present =
          fmt::format("SELECT count(*) FROM pragma_table_info('{}') WHERE name = '{}'", table, column);
      if (!writer->execAndGet(present).getInt())
        writer->exec(fmt::format("ALTER TABLE {} ADD COLUMN {}", table, definition));
    };
    add_column("blobs", "body", "body BLOB");
    add_column("mailboxes", "special_use", "special_use TEXT NOT NULL DEFAULT ''");
    add_column("messages", "flags", "flags TEXT NOT NULL DEFAULT ''");
    add_column("mailboxes", "highestmodseq", "highestmodseq INTEGER NOT NULL DEFAULT 1");
    add_column("messages", "modseq", "modseq INTEGER NOT NULL DEFAULT 1");
    add_column("mailboxes", "expunged_floor", "expunged_floor INTEGER NOT NULL DEFAULT 0");
    add_column("queue", "held", "held INTEGER NOT NULL DEFAULT 0");
    add_column("queue", "delay_notified", "delay_notified INTEGER NOT NULL DEFAULT 0");
    add_column("queue", "smtputf8", "smtputf8 INTEGER NOT NULL DEFAULT 0");
    add_column("queue", "leased_until", "leased_until INTEGER NOT NULL DEFAULT 0");
    add_column("queue", "flushed", "flushed INTEGER NOT NULL DEFAULT 0");
    add_column("queue_recipients", "diagnostic", "diagnostic TEXT NOT NULL DEFAULT ''");
    add_column("queue_recipients", "remote_host", "remote_host TEXT NOT NULL DEFAULT ''");
    add_column("state", "expires", "expires INTEGER NOT NULL DEFAULT 0");
    // Lookups (RCPT, logins, listings) read through a connection of their own: in WAL mode they then never
    // wait for a commit's fsync.
    // They do not map the database: SQLite drops the whole mapping at the first read after any commit, and with
    // several sessions writing flags that cost more (page faults, and TLB flushes on every core) than copying
    // what a read needs through read().
    for (std::size_t i = 0; i < kReaders; ++i) {
      auto& slot = readers_.emplace_back(std::make_unique<ReadConnection>());
      slot->connection = std::make_unique<Connection>(path.string(), SQLite::OPEN_READONLY | SQLite::OPEN_NOMUTEX);
      slot->connection->setBusyTimeout(5000);
    }
  });
}

Database::~Database() = default;

Database::Reader::Reader(Database& db) {
  for (const auto& slot : db.readers_) {
    std::unique_lock attempt(slot->mutex, std::try_to_lock);
    if (attempt.owns_lock()) {
      lock_ = std::move(attempt);
      connection_ = slot->connection.get();
      return;
    }
  }
  ReadConnection& slot = *db.readers_[db.next_reader_++ % db.readers_.size()];
  lock_ = std::unique_lock(slot.mutex);
  connection_ = slot.connection.get();
}

Database::Unflushed::Unflushed(Database& db) : db_(db) {
  db_.writer->query("PRAGMA synchronous = NORMAL")->exec();
}

Database::Unflushed::~Unflushed() {
  try {
    db_.writer->query("PRAGMA synchronous = FULL")->exec();
  } catch (const std::exception&) {
    // Setting a pragma reads nothing and does no I/O: it fails only with the connection itself.
  }
}

std::vector<std::string> Database::release_blobs(const std::vector<std::string>& hashes) {
  std::vector<std::string> unused;
  Connection::Query release = writer->query("UPDATE blobs SET refs = refs - 1 WHERE hash = ? RETURNING refs");
  for (const std::string& hash : hashes) {
    release->bind(1, hash);
    if (release->executeStep() && release->getColumn(0).getInt64() <= 0) unused.push_back(hash);
    release->reset();
  }
  Connection::Query drop = writer->query("DELETE FROM blobs WHERE hash = ? AND refs <= 0");
  for (const std::string& hash : unused) {
    drop->bind(1, hash);
    drop->exec();
    drop->reset();
  }
  return unused;
}

}  // namespace tern::store_sqlite
