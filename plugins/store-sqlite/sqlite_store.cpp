#include "sqlite_store.hpp"

#include "store_queries.hpp"

#include <fmt/format.h>

#include <SQLiteCpp/SQLiteCpp.h>
#include <algorithm>
#include <chrono>
#include <sstream>

namespace tern::store_sqlite {
namespace {

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
CREATE TABLE IF NOT EXISTS expunged (
  mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
  uid INTEGER NOT NULL,
  modseq INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS expunged_by_modseq ON expunged (mailbox_id, modseq);
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
  PRIMARY KEY (space, key));
CREATE TABLE IF NOT EXISTS counters (
  name TEXT PRIMARY KEY,
  value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS quotas (
  user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
  storage_limit INTEGER NOT NULL,
  messages_limit INTEGER NOT NULL);
)sql";

constexpr int kMaxAliasDepth = 8;

// Every user's mailboxes from the start (RFC 6154 special uses).
constexpr std::pair<const char*, const char*> kDefaultMailboxes[] = {
    {"INBOX", ""},        {"Sent", "\\Sent"}, {"Drafts", "\\Drafts"},
    {"Trash", "\\Trash"}, {"Junk", "\\Junk"}, {"Archive", "\\Archive"},
};

bool contains(const std::vector<std::string>& list, const std::string& value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

std::vector<std::string> alias_targets(SQLite::Database& db, const std::string& source) {
  std::vector<std::string> targets;
  SQLite::Statement query(db, "SELECT target FROM aliases WHERE source = ? ORDER BY id");
  query.bind(1, source);
  while (query.executeStep()) targets.push_back(query.getColumn(0).getString());
  return targets;
}

void expand_into(SQLite::Database& db, const std::string& address, int depth, sdk::RecipientExpansion& expansion) {
  if (depth > kMaxAliasDepth) return;
  const std::string domain = domain_of(address);
  if (domain_id(db, domain) == 0) {
    // Outside the local domains: an alias forwards there.
    if (depth > 0 && !contains(expansion.forwards, address)) expansion.forwards.push_back(address);
    return;
  }
  std::vector<std::string> targets = alias_targets(db, address);
  // The domain's catch-all ("@domain") takes what is neither a user nor an alias.
  if (targets.empty() && !user_id(db, address)) targets = alias_targets(db, "@" + domain);
  if (targets.empty()) targets.push_back(address);
  const bool forwarded = targets.size() != 1 || targets.front() != address;
  if (forwarded && !contains(expansion.aliases, address)) expansion.aliases.push_back(address);
  for (const std::string& target : targets) {
    if (target == address) {
      // An alias that lists its own address keeps a copy for the user of that name, as Postfix's do.
      if (user_id(db, address) && !contains(expansion.local_users, address)) expansion.local_users.push_back(address);
    } else {
      expand_into(db, target, depth + 1, expansion);
    }
  }
}

}  // namespace

SqliteStore::SqliteStore(const std::filesystem::path& database, const std::filesystem::path& blobs,
                         std::size_t inline_limit, std::size_t expunged_kept)
    : blobs_(blobs), inline_limit_(inline_limit), expunged_kept_(expunged_kept) {
  guarded("open database", [&] {
    // NOMUTEX: each connection is used under a mutex of this class already; SQLite's own would be a second one.
    db_ = std::make_unique<SQLite::Database>(database.string(),
                                             SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE | SQLite::OPEN_NOMUTEX);
    db_->setBusyTimeout(5000);
    db_->exec("PRAGMA journal_mode = WAL");
    // FULL: a commit is durable when it returns, which is what "250 OK" promises.
    db_->exec("PRAGMA synchronous = FULL");
    db_->exec("PRAGMA foreign_keys = ON");
    // A database made before usage was counted gets its counts once, as the table is made.
    const bool counted = db_->execAndGet("SELECT count(*) FROM sqlite_master WHERE name = 'usage'").getInt() > 0;
    db_->exec(kSchema);
    if (!counted) {
      db_->exec(
          "INSERT OR REPLACE INTO usage (user_id, octets, messages) SELECT b.user_id, sum(m.size), count(*) "
          "FROM messages m JOIN mailboxes b ON m.mailbox_id = b.id GROUP BY b.user_id");
    }
    // Databases made by earlier versions lack these columns.
    const auto add_column = [this](const char* table, const char* column, const char* definition) {
      const std::string present =
          fmt::format("SELECT count(*) FROM pragma_table_info('{}') WHERE name = '{}'", table, column);
      if (!db_->execAndGet(present).getInt()) db_->exec(fmt::format("ALTER TABLE {} ADD COLUMN {}", table, definition));
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
    // Lookups (RCPT, logins, listings) read through a connection of their own: in WAL mode they then never
    // wait for a commit's fsync.
    reader_ = std::make_unique<SQLite::Database>(database.string(), SQLite::OPEN_READONLY | SQLite::OPEN_NOMUTEX);
    reader_->setBusyTimeout(5000);
    // Reads (whole mailboxes for FETCH and SEARCH) map the database rather than copy it through read().
    reader_->exec("PRAGMA mmap_size = 268435456");
  });
}

SqliteStore::~SqliteStore() = default;

bool SqliteStore::is_local_domain(std::string_view domain) {
  std::lock_guard lock(read_mutex_);
  return guarded("look up domain", [&] { return domain_id(*reader_, lower_ascii(domain)) != 0; });
}

void SqliteStore::add_domain(std::string_view domain) {
  std::lock_guard lock(mutex_);
  std::string name = lower_ascii(domain);
  guarded("add domain", [&] {
    if (domain_id(*db_, name) != 0) throw sdk::DirectoryError(fmt::format("domain {} exists already", name));
    SQLite::Statement insert(*db_, "INSERT INTO domains (name) VALUES (?)");
    insert.bind(1, name);
    insert.exec();
  });
}

void SqliteStore::remove_domain(std::string_view domain) {
  std::lock_guard lock(mutex_);
  std::string name = lower_ascii(domain);
  guarded("remove domain", [&] {
    std::int64_t id = domain_id(*db_, name);
    if (id == 0) throw sdk::DirectoryError(fmt::format("domain {} does not exist", name));
    SQLite::Statement users(*db_,
                            "SELECT (SELECT count(*) FROM users WHERE domain_id = ?1) + "
                            "(SELECT count(*) FROM aliases WHERE domain_id = ?1)");
    users.bind(1, id);
    users.executeStep();
    if (users.getColumn(0).getInt64() > 0) {
      throw sdk::DirectoryError(fmt::format("domain {} still has users or aliases; remove them first", name));
    }
    SQLite::Statement remove(*db_, "DELETE FROM domains WHERE id = ?");
    remove.bind(1, id);
    remove.exec();
  });
}

std::vector<std::string> SqliteStore::list_domains() {
  std::lock_guard lock(read_mutex_);
  return guarded("list domains", [&] {
    std::vector<std::string> names;
    SQLite::Statement query(*reader_, "SELECT name FROM domains ORDER BY name");
    while (query.executeStep()) names.push_back(query.getColumn(0).getString());
    return names;
  });
}

void SqliteStore::add_user(std::string_view address, std::string_view password_hash) {
  std::lock_guard lock(mutex_);
  std::string name = lower_ascii(address);
  guarded("add user", [&] {
    std::int64_t domain = domain_id(*db_, domain_of(name));
    if (domain == 0) throw sdk::DirectoryError(fmt::format("{} is not a local domain; add it first", domain_of(name)));
    if (user_id(*db_, name)) throw sdk::DirectoryError(fmt::format("user {} exists already", name));
    SQLite::Transaction transaction(*db_);
    SQLite::Statement insert(*db_, "INSERT INTO users (address, domain_id, password_hash) VALUES (?, ?, ?)");
    insert.bind(1, name);
    insert.bind(2, domain);
    insert.bind(3, std::string(password_hash));
    insert.exec();
    const std::int64_t user = db_->getLastInsertRowid();
    SQLite::Statement mailbox(*db_,
                              "INSERT INTO mailboxes (user_id, name, uidvalidity, special_use) VALUES (?, ?, ?, ?)");
    const std::int64_t uidvalidity = next_uidvalidity(*db_);
    for (const auto& [name, special_use] : kDefaultMailboxes) {
      mailbox.bind(1, user);
      mailbox.bind(2, name);
      mailbox.bind(3, uidvalidity);
      mailbox.bind(4, special_use);
      mailbox.exec();
      mailbox.reset();
    }
    transaction.commit();
  });
}

void SqliteStore::set_password_hash(std::string_view address, std::string_view password_hash) {
  std::lock_guard lock(mutex_);
  std::string name = lower_ascii(address);
  guarded("set password", [&] {
    SQLite::Statement update(*db_, "UPDATE users SET password_hash = ? WHERE address = ?");
    update.bind(1, std::string(password_hash));
    update.bind(2, name);
    if (update.exec() == 0) throw sdk::DirectoryError(fmt::format("user {} does not exist", name));
  });
}

void SqliteStore::remove_user(std::string_view address) {
  std::lock_guard lock(mutex_);
  std::string name = lower_ascii(address);
  std::vector<std::string> unused = guarded("remove user", [&] {
    auto id = user_id(*db_, name);
    if (!id) throw sdk::DirectoryError(fmt::format("user {} does not exist", name));
    SQLite::Transaction transaction(*db_);
    std::vector<std::string> hashes;
    SQLite::Statement held(*db_,
                           "SELECT m.blob FROM messages m JOIN mailboxes b ON m.mailbox_id = b.id WHERE b.user_id = ?");
    held.bind(1, *id);
    while (held.executeStep()) hashes.push_back(held.getColumn(0).getString());
    SQLite::Statement remove(*db_, "DELETE FROM users WHERE id = ?");
    remove.bind(1, *id);
    remove.exec();
    std::vector<std::string> released = release_blobs(hashes);
    transaction.commit();
    return released;
  });
  for (const std::string& hash : unused) blobs_.remove(hash);
}

std::vector<std::string> SqliteStore::list_users(std::string_view domain) {
  std::lock_guard lock(read_mutex_);
  return guarded("list users", [&] {
    std::vector<std::string> names;
    SQLite::Statement query(*reader_,
                            "SELECT u.address FROM users u JOIN domains d ON u.domain_id = d.id "
                            "WHERE ?1 = '' OR d.name = ?1 ORDER BY u.address");
    query.bind(1, lower_ascii(domain));
    while (query.executeStep()) names.push_back(query.getColumn(0).getString());
    return names;
  });
}

std::optional<std::string> SqliteStore::password_hash(std::string_view address) {
  std::lock_guard lock(read_mutex_);
  return guarded("look up user", [&]() -> std::optional<std::string> {
    SQLite::Statement query(*reader_, "SELECT password_hash FROM users WHERE address = ?");
    query.bind(1, lower_ascii(address));
    if (!query.executeStep()) return std::nullopt;
    return query.getColumn(0).getString();
  });
}

void SqliteStore::add_alias(std::string_view source, std::string_view target) {
  std::lock_guard lock(mutex_);
  std::string from = lower_ascii(source);
  std::string to = lower_ascii(target);
  guarded("add alias", [&] {
    // "@domain" is the domain's catch-all.
    std::int64_t domain = domain_id(*db_, from.front() == '@' ? from.substr(1) : domain_of(from));
    if (domain == 0) throw sdk::DirectoryError(fmt::format("{} is not a local domain; add it first", domain_of(from)));
    if (from == to) throw sdk::DirectoryError("an alias cannot point to itself");
    SQLite::Statement insert(*db_, "INSERT OR IGNORE INTO aliases (source, target, domain_id) VALUES (?, ?, ?)");
    insert.bind(1, from);
    insert.bind(2, to);
    insert.bind(3, domain);
    if (insert.exec() == 0) throw sdk::DirectoryError(fmt::format("alias {} -> {} exists already", from, to));
  });
}

void SqliteStore::remove_alias(std::string_view source, std::string_view target) {
  std::lock_guard lock(mutex_);
  guarded("remove alias", [&] {
    SQLite::Statement remove(*db_, "DELETE FROM aliases WHERE source = ? AND target = ?");
    remove.bind(1, lower_ascii(source));
    remove.bind(2, lower_ascii(target));
    if (remove.exec() == 0) {
      throw sdk::DirectoryError(fmt::format("no alias {} -> {}", lower_ascii(source), lower_ascii(target)));
    }
  });
}

std::vector<sdk::AliasEntry> SqliteStore::list_aliases(std::string_view domain) {
  std::lock_guard lock(read_mutex_);
  return guarded("list aliases", [&] {
    std::vector<sdk::AliasEntry> entries;
    SQLite::Statement query(*reader_,
                            "SELECT a.source, a.target FROM aliases a JOIN domains d ON a.domain_id = d.id "
                            "WHERE ?1 = '' OR d.name = ?1 ORDER BY a.source, a.target");
    query.bind(1, lower_ascii(domain));
    while (query.executeStep()) entries.push_back({query.getColumn(0).getString(), query.getColumn(1).getString()});
    return entries;
  });
}

sdk::QuotaInfo SqliteStore::quota(std::string_view address) {
  std::lock_guard lock(read_mutex_);
  return guarded("read quota", [&] {
    // Usage is kept up to date by triggers on messages (see the schema): reading it costs one row.
    SQLite::Statement query(*reader_,
                            "SELECT coalesce(q.storage_limit, 0), coalesce(q.messages_limit, 0), "
                            "coalesce(s.octets, 0), coalesce(s.messages, 0) FROM users u "
                            "LEFT JOIN quotas q ON q.user_id = u.id LEFT JOIN usage s ON s.user_id = u.id "
                            "WHERE u.address = ?");
    query.bind(1, lower_ascii(address));
    if (!query.executeStep()) throw sdk::DirectoryError(fmt::format("user {} does not exist", lower_ascii(address)));
    sdk::QuotaInfo info;
    info.storage_limit = static_cast<std::uint64_t>(query.getColumn(0).getInt64());
    info.messages_limit = static_cast<std::uint64_t>(query.getColumn(1).getInt64());
    info.storage_used = static_cast<std::uint64_t>(query.getColumn(2).getInt64());
    info.messages_used = static_cast<std::uint64_t>(query.getColumn(3).getInt64());
    return info;
  });
}

void SqliteStore::set_quota(std::string_view address, std::uint64_t storage_limit, std::uint64_t messages_limit) {
  std::lock_guard lock(mutex_);
  guarded("set quota", [&] {
    const std::string name = lower_ascii(address);
    auto id = user_id(*db_, name);
    if (!id) throw sdk::DirectoryError(fmt::format("user {} does not exist", name));
    SQLite::Statement upsert(*db_,
                             "INSERT INTO quotas (user_id, storage_limit, messages_limit) VALUES (?1, ?2, ?3) "
                             "ON CONFLICT (user_id) DO UPDATE SET storage_limit = ?2, messages_limit = ?3");
    upsert.bind(1, *id);
    upsert.bind(2, static_cast<std::int64_t>(storage_limit));
    upsert.bind(3, static_cast<std::int64_t>(messages_limit));
    upsert.exec();
  });
}

std::optional<std::string> SqliteStore::state_get(std::string_view space, std::string_view key) {
  std::lock_guard lock(read_mutex_);
  return guarded("read state", [&]() -> std::optional<std::string> {
    SQLite::Statement query(*reader_, "SELECT value FROM state WHERE space = ? AND key = ?");
    query.bind(1, std::string(space));
    query.bind(2, std::string(key));
    if (!query.executeStep()) return std::nullopt;
    return query.getColumn(0).getString();
  });
}

std::vector<std::pair<std::string, std::string>> SqliteStore::state_list(std::string_view space) {
  std::lock_guard lock(read_mutex_);
  return guarded("list state", [&] {
    std::vector<std::pair<std::string, std::string>> entries;
    SQLite::Statement query(*reader_, "SELECT key, value FROM state WHERE space = ? ORDER BY key");
    query.bind(1, std::string(space));
    while (query.executeStep()) entries.emplace_back(query.getColumn(0).getString(), query.getColumn(1).getString());
    return entries;
  });
}

void SqliteStore::state_put(const std::vector<sdk::StateChange>& changes) {
  std::lock_guard lock(mutex_);
  guarded("write state", [&] {
    SQLite::Transaction transaction(*db_);
    write_state(*db_, changes);
    transaction.commit();
  });
}

void SqliteStore::state_erase(std::string_view space, std::string_view key) {
  std::lock_guard lock(mutex_);
  guarded("erase state", [&] {
    SQLite::Statement erase(*db_, "DELETE FROM state WHERE space = ? AND key = ?");
    erase.bind(1, std::string(space));
    erase.bind(2, std::string(key));
    erase.exec();
  });
}

sdk::RecipientExpansion SqliteStore::expand_recipient(std::string_view address) {
  std::lock_guard lock(read_mutex_);
  return guarded("resolve recipient", [&] {
    sdk::RecipientExpansion expansion;
    expand_into(*reader_, lower_ascii(address), 0, expansion);
    return expansion;
  });
}

std::vector<std::string> SqliteStore::release_blobs(const std::vector<std::string>& hashes) {
  std::vector<std::string> unused;
  SQLite::Statement release(*db_, "UPDATE blobs SET refs = refs - 1 WHERE hash = ? RETURNING refs");
  for (const std::string& hash : hashes) {
    release.bind(1, hash);
    if (release.executeStep() && release.getColumn(0).getInt64() <= 0) unused.push_back(hash);
    release.reset();
  }
  SQLite::Statement drop(*db_, "DELETE FROM blobs WHERE hash = ? AND refs <= 0");
  for (const std::string& hash : unused) {
    drop.bind(1, hash);
    drop.exec();
    drop.reset();
  }
  return unused;
}

}  // namespace tern::store_sqlite
