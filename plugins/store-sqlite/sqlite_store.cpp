#include "sqlite_store.hpp"

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
  attempts INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS queue_recipients (
  queue_id INTEGER NOT NULL REFERENCES queue(id) ON DELETE CASCADE,
  address TEXT NOT NULL,
  notify TEXT NOT NULL,
  orcpt TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending');
CREATE TABLE IF NOT EXISTS messages (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
  uid INTEGER NOT NULL,
  blob TEXT NOT NULL REFERENCES blobs(hash),
  size INTEGER NOT NULL,
  received INTEGER NOT NULL,
  flags TEXT NOT NULL DEFAULT '',
  UNIQUE (mailbox_id, uid));
)sql";

constexpr int kMaxAliasDepth = 8;

// Every user's mailboxes from the start (RFC 6154 special uses).
constexpr std::pair<const char*, const char*> kDefaultMailboxes[] = {
    {"INBOX", ""},        {"Sent", "\\Sent"}, {"Drafts", "\\Drafts"},
    {"Trash", "\\Trash"}, {"Junk", "\\Junk"}, {"Archive", "\\Archive"},
};

std::string lower(std::string_view text) {
  std::string result(text);
  std::transform(result.begin(), result.end(), result.begin(), [](unsigned char c) { return std::tolower(c); });
  return result;
}

std::string domain_of(const std::string& address) {
  std::size_t at = address.rfind('@');
  return at == std::string::npos ? std::string() : address.substr(at + 1);
}

std::int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Every SQLite failure becomes a StoreError, which callers answer with a temporary failure.
template <typename Work>
auto guarded(const char* what, Work work) {
  try {
    return work();
  } catch (const SQLite::Exception& error) {
    throw sdk::StoreError(fmt::format("{}: {}", what, error.what()));
  }
}

std::int64_t domain_id(SQLite::Database& db, const std::string& domain) {
  SQLite::Statement query(db, "SELECT id FROM domains WHERE name = ?");
  query.bind(1, domain);
  return query.executeStep() ? query.getColumn(0).getInt64() : 0;
}

std::optional<std::int64_t> user_id(SQLite::Database& db, const std::string& address) {
  SQLite::Statement query(db, "SELECT id FROM users WHERE address = ?");
  query.bind(1, address);
  if (!query.executeStep()) return std::nullopt;
  return query.getColumn(0).getInt64();
}

void resolve_into(SQLite::Database& db, const std::string& address, int depth, std::vector<std::string>& users) {
  if (depth > kMaxAliasDepth || domain_id(db, domain_of(address)) == 0) return;
  std::vector<std::string> targets;
  SQLite::Statement query(db, "SELECT target FROM aliases WHERE source = ?");
  query.bind(1, address);
  while (query.executeStep()) targets.push_back(query.getColumn(0).getString());
  if (targets.empty()) targets.push_back(address);
  for (const std::string& target : targets) {
    if (target == address) {
      // An alias that lists its own address keeps a copy for the user of that name, as Postfix's do.
      if (user_id(db, address) && std::find(users.begin(), users.end(), address) == users.end()) {
        users.push_back(address);
      }
    } else {
      resolve_into(db, target, depth + 1, users);
    }
  }
}

}  // namespace

SqliteStore::SqliteStore(const std::filesystem::path& database, const std::filesystem::path& blobs,
                         std::size_t inline_limit)
    : blobs_(blobs), inline_limit_(inline_limit) {
  guarded("open database", [&] {
    db_ = std::make_unique<SQLite::Database>(database.string(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db_->setBusyTimeout(5000);
    db_->exec("PRAGMA journal_mode = WAL");
    // FULL: a commit is durable when it returns, which is what "250 OK" promises.
    db_->exec("PRAGMA synchronous = FULL");
    db_->exec("PRAGMA foreign_keys = ON");
    db_->exec(kSchema);
    // Databases made by earlier versions lack these columns.
    const auto add_column = [this](const char* table, const char* column, const char* definition) {
      const std::string present =
          fmt::format("SELECT count(*) FROM pragma_table_info('{}') WHERE name = '{}'", table, column);
      if (!db_->execAndGet(present).getInt()) db_->exec(fmt::format("ALTER TABLE {} ADD COLUMN {}", table, definition));
    };
    add_column("blobs", "body", "body BLOB");
    add_column("mailboxes", "special_use", "special_use TEXT NOT NULL DEFAULT ''");
    add_column("messages", "flags", "flags TEXT NOT NULL DEFAULT ''");
    // Lookups (RCPT, logins, listings) read through a connection of their own: in WAL mode they then never
    // wait for a commit's fsync.
    reader_ = std::make_unique<SQLite::Database>(database.string(), SQLite::OPEN_READONLY);
    reader_->setBusyTimeout(5000);
  });
}

SqliteStore::~SqliteStore() = default;

bool SqliteStore::is_local_domain(std::string_view domain) {
  std::lock_guard lock(read_mutex_);
  return guarded("look up domain", [&] { return domain_id(*reader_, lower(domain)) != 0; });
}

void SqliteStore::add_domain(std::string_view domain) {
  std::lock_guard lock(mutex_);
  std::string name = lower(domain);
  guarded("add domain", [&] {
    if (domain_id(*db_, name) != 0) throw sdk::DirectoryError(fmt::format("domain {} exists already", name));
    SQLite::Statement insert(*db_, "INSERT INTO domains (name) VALUES (?)");
    insert.bind(1, name);
    insert.exec();
  });
}

void SqliteStore::remove_domain(std::string_view domain) {
  std::lock_guard lock(mutex_);
  std::string name = lower(domain);
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
  std::string name = lower(address);
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
    for (const auto& [name, special_use] : kDefaultMailboxes) {
      mailbox.bind(1, user);
      mailbox.bind(2, name);
      mailbox.bind(3, now_seconds());
      mailbox.bind(4, special_use);
      mailbox.exec();
      mailbox.reset();
    }
    transaction.commit();
  });
}

void SqliteStore::set_password_hash(std::string_view address, std::string_view password_hash) {
  std::lock_guard lock(mutex_);
  std::string name = lower(address);
  guarded("set password", [&] {
    SQLite::Statement update(*db_, "UPDATE users SET password_hash = ? WHERE address = ?");
    update.bind(1, std::string(password_hash));
    update.bind(2, name);
    if (update.exec() == 0) throw sdk::DirectoryError(fmt::format("user {} does not exist", name));
  });
}

void SqliteStore::remove_user(std::string_view address) {
  std::lock_guard lock(mutex_);
  std::string name = lower(address);
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
    query.bind(1, lower(domain));
    while (query.executeStep()) names.push_back(query.getColumn(0).getString());
    return names;
  });
}

std::optional<std::string> SqliteStore::password_hash(std::string_view address) {
  std::lock_guard lock(read_mutex_);
  return guarded("look up user", [&]() -> std::optional<std::string> {
    SQLite::Statement query(*reader_, "SELECT password_hash FROM users WHERE address = ?");
    query.bind(1, lower(address));
    if (!query.executeStep()) return std::nullopt;
    return query.getColumn(0).getString();
  });
}

void SqliteStore::add_alias(std::string_view source, std::string_view target) {
  std::lock_guard lock(mutex_);
  std::string from = lower(source);
  std::string to = lower(target);
  guarded("add alias", [&] {
    std::int64_t domain = domain_id(*db_, domain_of(from));
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
    remove.bind(1, lower(source));
    remove.bind(2, lower(target));
    if (remove.exec() == 0) {
      throw sdk::DirectoryError(fmt::format("no alias {} -> {}", lower(source), lower(target)));
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
    query.bind(1, lower(domain));
    while (query.executeStep()) entries.push_back({query.getColumn(0).getString(), query.getColumn(1).getString()});
    return entries;
  });
}

std::vector<std::string> SqliteStore::resolve_recipient(std::string_view address) {
  std::lock_guard lock(read_mutex_);
  return guarded("resolve recipient", [&] {
    std::vector<std::string> users;
    resolve_into(*reader_, lower(address), 0, users);
    return users;
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

void SqliteStore::receive(std::string_view message, const sdk::Intake& intake) {
  file(message, intake);
}

std::uint32_t SqliteStore::file(std::string_view message, const sdk::Intake& intake) {
  if (intake.local_users.empty() && intake.remote.empty()) return 0;
  Delivery delivery;
  delivery.message = message;
  delivery.intake = &intake;
  // A large body is written to its file and fsynced here, on the caller's thread, in parallel with other
  // deliveries; a small one travels inside the database and costs no fsync of its own.
  delivery.in_file = message.size() > inline_limit_;
  delivery.hash = delivery.in_file ? blobs_.write(message) : sha256_hex(message);
  batcher_.run(delivery, [this](const std::vector<Delivery*>& batch) { commit_batch(batch); });
  return delivery.uid;
}

std::optional<std::pair<std::int64_t, std::int64_t>> SqliteStore::find_mailbox(SQLite::Database& db,
                                                                               std::string_view user,
                                                                               std::string_view mailbox) {
  SQLite::Statement query(db,
                          "SELECT b.id, b.uidvalidity FROM mailboxes b JOIN users u ON b.user_id = u.id "
                          "WHERE u.address = ? AND b.name = ?");
  query.bind(1, lower(user));
  query.bind(2, std::string(mailbox));
  if (!query.executeStep()) return std::nullopt;
  return std::pair{query.getColumn(0).getInt64(), query.getColumn(1).getInt64()};
}

sdk::MessageEntry SqliteStore::append_message(std::string_view user, std::string_view mailbox, std::string_view message,
                                              std::string_view flags, std::int64_t received) {
  std::optional<std::pair<std::int64_t, std::int64_t>> target;
  {
    std::lock_guard lock(read_mutex_);
    target = guarded("find mailbox", [&] { return find_mailbox(*reader_, user, mailbox); });
  }
  if (!target) throw sdk::StoreError(fmt::format("no mailbox {}", mailbox));
  sdk::Intake intake;
  intake.local_users = {lower(user)};
  intake.mailbox = std::string(mailbox);
  intake.flags = std::string(flags);
  intake.received = received;
  sdk::MessageEntry entry;
  entry.uid = file(message, intake);
  entry.size = message.size();
  entry.flags = intake.flags;
  entry.received = received;
  entry.unique_id = fmt::format("{}.{}", target->second, entry.uid);
  return entry;
}

std::pair<std::uint32_t, std::vector<std::pair<std::uint32_t, std::uint32_t>>> SqliteStore::copy_messages(
    std::string_view user, const std::vector<std::int64_t>& ids, std::string_view mailbox) {
  std::lock_guard lock(mutex_);
  return guarded("copy messages", [&] {
    auto target = find_mailbox(*db_, user, mailbox);
    if (!target) throw sdk::StoreError(fmt::format("no mailbox {}", mailbox));
    std::vector<std::pair<std::uint32_t, std::uint32_t>> uids;
    SQLite::Transaction transaction(*db_);
    SQLite::Statement source(*db_,
                             "SELECT m.uid, m.blob, m.size, m.received, m.flags FROM messages m "
                             "JOIN mailboxes b ON m.mailbox_id = b.id JOIN users u ON b.user_id = u.id "
                             "WHERE m.id = ? AND u.address = ?");
    SQLite::Statement next(*db_, "UPDATE mailboxes SET uidnext = uidnext + 1 WHERE id = ? RETURNING uidnext - 1");
    SQLite::Statement insert(*db_,
                             "INSERT INTO messages (mailbox_id, uid, blob, size, received, flags) "
                             "VALUES (?, ?, ?, ?, ?, ?)");
    SQLite::Statement reference(*db_, "UPDATE blobs SET refs = refs + 1 WHERE hash = ?");
    for (std::int64_t id : ids) {
      source.bind(1, id);
      source.bind(2, lower(user));
      if (!source.executeStep()) {
        source.reset();
        continue;
      }
      next.bind(1, target->first);
      next.executeStep();
      const auto uid = static_cast<std::uint32_t>(next.getColumn(0).getInt64());
      next.reset();
      insert.bind(1, target->first);
      insert.bind(2, static_cast<std::int64_t>(uid));
      insert.bind(3, source.getColumn(1).getString());
      insert.bind(4, source.getColumn(2).getInt64());
      insert.bind(5, source.getColumn(3).getInt64());
      insert.bind(6, source.getColumn(4).getString());
      insert.exec();
      insert.reset();
      reference.bind(1, source.getColumn(1).getString());
      reference.exec();
      reference.reset();
      uids.emplace_back(static_cast<std::uint32_t>(source.getColumn(0).getInt64()), uid);
      source.reset();
    }
    transaction.commit();
    return std::pair{static_cast<std::uint32_t>(target->second), uids};
  });
}

void SqliteStore::create_mailbox(std::string_view user, std::string_view mailbox) {
  std::lock_guard lock(mutex_);
  guarded("create mailbox", [&] {
    auto id = user_id(*db_, lower(user));
    if (!id) throw sdk::DirectoryError(fmt::format("user {} does not exist", user));
    if (find_mailbox(*db_, user, mailbox)) throw sdk::DirectoryError(fmt::format("{} exists already", mailbox));
    SQLite::Statement insert(*db_, "INSERT INTO mailboxes (user_id, name, uidvalidity) VALUES (?, ?, ?)");
    insert.bind(1, *id);
    insert.bind(2, std::string(mailbox));
    insert.bind(3, now_seconds());
    insert.exec();
  });
}

void SqliteStore::delete_mailbox(std::string_view user, std::string_view mailbox) {
  std::lock_guard lock(mutex_);
  std::vector<std::string> unused = guarded("delete mailbox", [&] {
    if (mailbox == "INBOX") throw sdk::DirectoryError("INBOX cannot be deleted");
    auto target = find_mailbox(*db_, user, mailbox);
    if (!target) throw sdk::DirectoryError(fmt::format("no mailbox {}", mailbox));
    SQLite::Statement children(*db_,
                               "SELECT count(*) FROM mailboxes b JOIN users u ON b.user_id = u.id "
                               "WHERE u.address = ? AND substr(b.name, 1, ?) = ?");
    const std::string prefix = std::string(mailbox) + "/";
    children.bind(1, lower(user));
    children.bind(2, static_cast<std::int64_t>(prefix.size()));
    children.bind(3, prefix);
    children.executeStep();
    if (children.getColumn(0).getInt64() > 0) throw sdk::DirectoryError(fmt::format("{} has children", mailbox));
    SQLite::Transaction transaction(*db_);
    std::vector<std::string> hashes;
    SQLite::Statement held(*db_, "SELECT blob FROM messages WHERE mailbox_id = ?");
    held.bind(1, target->first);
    while (held.executeStep()) hashes.push_back(held.getColumn(0).getString());
    SQLite::Statement remove(*db_, "DELETE FROM mailboxes WHERE id = ?");
    remove.bind(1, target->first);
    remove.exec();
    std::vector<std::string> released = release_blobs(hashes);
    transaction.commit();
    return released;
  });
  for (const std::string& hash : unused) blobs_.remove(hash);
}

void SqliteStore::rename_mailbox(std::string_view user, std::string_view from, std::string_view to) {
  std::lock_guard lock(mutex_);
  guarded("rename mailbox", [&] {
    if (from == "INBOX" || to == "INBOX") throw sdk::DirectoryError("INBOX cannot be renamed");
    if (!find_mailbox(*db_, user, from)) throw sdk::DirectoryError(fmt::format("no mailbox {}", from));
    if (find_mailbox(*db_, user, to)) throw sdk::DirectoryError(fmt::format("{} exists already", to));
    // The mailbox and its children move together; each keeps its UIDVALIDITY and UIDs.
    SQLite::Statement rename(*db_,
                             "UPDATE mailboxes SET name = ?3 || substr(name, length(?2) + 1) "
                             "WHERE user_id = (SELECT id FROM users WHERE address = ?1) "
                             "AND (name = ?2 OR substr(name, 1, length(?2) + 1) = ?2 || '/')");
    rename.bind(1, lower(user));
    rename.bind(2, std::string(from));
    rename.bind(3, std::string(to));
    rename.exec();
  });
}

void SqliteStore::commit_batch(const std::vector<Delivery*>& batch) {
  std::lock_guard lock(mutex_);
  try {
    const std::int64_t received = now_seconds();
    SQLite::Transaction transaction(*db_);
    SQLite::Statement blob(*db_,
                           "INSERT INTO blobs (hash, size, refs, body) VALUES (?1, ?2, ?3, ?4) "
                           "ON CONFLICT (hash) DO UPDATE SET refs = refs + ?3 RETURNING refs = ?3");
    SQLite::Statement create(*db_,
                             "INSERT OR IGNORE INTO mailboxes (user_id, name, uidvalidity) "
                             "SELECT id, ?, ? FROM users WHERE address = ?");
    SQLite::Statement mailbox(*db_,
                              "UPDATE mailboxes SET uidnext = uidnext + 1 WHERE name = ? AND "
                              "user_id = (SELECT id FROM users WHERE address = ?) RETURNING id, uidnext - 1");
    SQLite::Statement insert(*db_,
                             "INSERT INTO messages (mailbox_id, uid, blob, size, received, flags) "
                             "VALUES (?, ?, ?, ?, ?, ?)");
    SQLite::Statement queue(*db_,
                            "INSERT INTO queue (blob, sender, ret, envid, size, created, next_attempt) "
                            "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)");
    SQLite::Statement queue_recipient(
        *db_, "INSERT INTO queue_recipients (queue_id, address, notify, orcpt) VALUES (?, ?, ?, ?)");
    for (Delivery* delivery : batch) {
      const sdk::Intake& intake = *delivery->intake;
      // Each delivery in a savepoint of its own: one that fails (a user removed meanwhile) fails alone.
      db_->exec("SAVEPOINT delivery");
      try {
        blob.bind(1, delivery->hash);
        blob.bind(2, static_cast<std::int64_t>(delivery->message.size()));
        // One reference per mailbox copy, and one for the queue entry.
        blob.bind(3, static_cast<std::int64_t>(intake.local_users.size() + (intake.remote.empty() ? 0 : 1)));
        if (delivery->in_file) {
          blob.bind(4);
        } else {
          blob.bind(4, delivery->message.data(), static_cast<int>(delivery->message.size()));
        }
        blob.executeStep();
        const bool first_reference = blob.getColumn(0).getInt() != 0;
        blob.reset();
        // The file may have been unlinked by a removal that committed after write() found it: write it again.
        if (delivery->in_file && first_reference) blobs_.write(delivery->message);
        for (const std::string& user : intake.local_users) {
          const std::string address = lower(user);
          if (intake.mailbox != "INBOX") {
            create.bind(1, intake.mailbox);
            create.bind(2, received);
            create.bind(3, address);
            create.exec();
            create.reset();
          }
          mailbox.bind(1, intake.mailbox);
          mailbox.bind(2, address);
          const bool found = mailbox.executeStep();
          if (!found) {
            mailbox.reset();
            throw sdk::StoreError(fmt::format("deliver: no {} for {}", intake.mailbox, user));
          }
          insert.bind(1, mailbox.getColumn(0).getInt64());
          delivery->uid = static_cast<std::uint32_t>(mailbox.getColumn(1).getInt64());
          insert.bind(2, mailbox.getColumn(1).getInt64());
          mailbox.reset();
          insert.bind(3, delivery->hash);
          insert.bind(4, static_cast<std::int64_t>(delivery->message.size()));
          insert.bind(5, intake.received != 0 ? intake.received : received);
          insert.bind(6, intake.flags);
          insert.exec();
          insert.reset();
        }
        if (!intake.remote.empty()) {
          queue.bind(1, delivery->hash);
          queue.bind(2, intake.sender);
          queue.bind(3, intake.ret);
          queue.bind(4, intake.envid);
          queue.bind(5, static_cast<std::int64_t>(delivery->message.size()));
          queue.bind(6, received);
          queue.exec();
          queue.reset();
          const std::int64_t queue_id = db_->getLastInsertRowid();
          for (const sdk::Recipient& recipient : intake.remote) {
            queue_recipient.bind(1, queue_id);
            queue_recipient.bind(2, recipient.address);
            queue_recipient.bind(3, recipient.notify);
            queue_recipient.bind(4, recipient.orcpt);
            queue_recipient.exec();
            queue_recipient.reset();
          }
        }
        db_->exec("RELEASE delivery");
      } catch (const std::exception& failure) {
        blob.reset();
        db_->exec("ROLLBACK TO delivery");
        db_->exec("RELEASE delivery");
        delivery->error = std::make_exception_ptr(sdk::StoreError(std::string("deliver: ") + failure.what()));
      }
    }
    transaction.commit();
  } catch (const std::exception& failure) {
    for (Delivery* delivery : batch) {
      if (!delivery->error)
        delivery->error = std::make_exception_ptr(sdk::StoreError(std::string("deliver: ") + failure.what()));
    }
  }
}

std::vector<sdk::QueueEntry> SqliteStore::list_queue() {
  std::lock_guard lock(read_mutex_);
  return guarded("list queue", [&] {
    std::vector<sdk::QueueEntry> entries;
    SQLite::Statement query(*reader_, "SELECT id, sender, size, created FROM queue ORDER BY id");
    SQLite::Statement recipients(
        *reader_, "SELECT address, notify, orcpt FROM queue_recipients WHERE queue_id = ? ORDER BY rowid");
    while (query.executeStep()) {
      sdk::QueueEntry entry;
      entry.id = query.getColumn(0).getInt64();
      entry.sender = query.getColumn(1).getString();
      entry.size = static_cast<std::uint64_t>(query.getColumn(2).getInt64());
      entry.created = query.getColumn(3).getInt64();
      recipients.bind(1, entry.id);
      while (recipients.executeStep()) {
        entry.recipients.push_back({recipients.getColumn(0).getString(), recipients.getColumn(1).getString(),
                                    recipients.getColumn(2).getString()});
      }
      recipients.reset();
      entries.push_back(std::move(entry));
    }
    return entries;
  });
}

std::vector<sdk::MailboxInfo> SqliteStore::list_mailboxes(std::string_view user) {
  std::lock_guard lock(read_mutex_);
  return guarded("list mailboxes", [&] {
    std::vector<sdk::MailboxInfo> mailboxes;
    SQLite::Statement query(
        *reader_,
        "SELECT b.name, b.special_use, b.uidvalidity, b.uidnext, count(m.id), "
        "count(m.id) - count(CASE WHEN ' ' || m.flags || ' ' LIKE '% \\Seen %' THEN 1 END) "
        "FROM mailboxes b JOIN users u ON b.user_id = u.id LEFT JOIN messages m ON m.mailbox_id = b.id "
        "WHERE u.address = ? GROUP BY b.id ORDER BY b.name = 'INBOX' DESC, b.name");
    query.bind(1, lower(user));
    while (query.executeStep()) {
      mailboxes.push_back({query.getColumn(0).getString(), query.getColumn(1).getString(),
                           static_cast<std::uint32_t>(query.getColumn(2).getInt64()),
                           static_cast<std::uint32_t>(query.getColumn(3).getInt64()),
                           static_cast<std::uint32_t>(query.getColumn(4).getInt64()),
                           static_cast<std::uint32_t>(query.getColumn(5).getInt64())});
    }
    return mailboxes;
  });
}

std::vector<sdk::MessageEntry> SqliteStore::change_flags(std::string_view user, const std::vector<std::int64_t>& ids,
                                                         sdk::FlagChange change,
                                                         const std::vector<std::string>& flags) {
  {
    std::lock_guard lock(mutex_);
    guarded("change flags", [&] {
      SQLite::Transaction transaction(*db_);
      SQLite::Statement current(*db_,
                                "SELECT m.flags FROM messages m JOIN mailboxes b ON m.mailbox_id = b.id "
                                "JOIN users u ON b.user_id = u.id WHERE m.id = ? AND u.address = ?");
      SQLite::Statement update(*db_, "UPDATE messages SET flags = ? WHERE id = ?");
      for (std::int64_t id : ids) {
        current.bind(1, id);
        current.bind(2, lower(user));
        if (!current.executeStep()) {
          current.reset();
          continue;
        }
        std::vector<std::string> now;
        std::istringstream words(current.getColumn(0).getString());
        for (std::string word; words >> word;) now.push_back(word);
        current.reset();
        const auto has = [&now](const std::string& flag) {
          return std::any_of(now.begin(), now.end(), [&flag](const std::string& other) {
            return lower(other) == lower(flag);  // flags and keywords compare case-insensitively
          });
        };
        if (change == sdk::FlagChange::replace) now.clear();
        if (change == sdk::FlagChange::remove) {
          now.erase(std::remove_if(now.begin(), now.end(),
                                   [&flags](const std::string& flag) {
                                     return std::any_of(flags.begin(), flags.end(), [&flag](const std::string& gone) {
                                       return lower(gone) == lower(flag);
                                     });
                                   }),
                    now.end());
        } else {
          for (const std::string& flag : flags) {
            if (!has(flag)) now.push_back(flag);
          }
        }
        std::string joined;
        for (const std::string& flag : now) joined += (joined.empty() ? "" : " ") + flag;
        update.bind(1, joined);
        update.bind(2, id);
        update.exec();
        update.reset();
      }
      transaction.commit();
    });
  }
  std::lock_guard lock(read_mutex_);
  return guarded("read flags", [&] {
    std::vector<sdk::MessageEntry> entries;
    SQLite::Statement query(*reader_, "SELECT id, uid, size, flags, received FROM messages WHERE id = ?");
    for (std::int64_t id : ids) {
      query.bind(1, id);
      if (query.executeStep()) {
        sdk::MessageEntry entry;
        entry.id = query.getColumn(0).getInt64();
        entry.uid = static_cast<std::uint32_t>(query.getColumn(1).getInt64());
        entry.size = static_cast<std::uint64_t>(query.getColumn(2).getInt64());
        entry.flags = query.getColumn(3).getString();
        entry.received = query.getColumn(4).getInt64();
        entries.push_back(std::move(entry));
      }
      query.reset();
    }
    return entries;
  });
}

std::vector<sdk::MessageEntry> SqliteStore::list_messages(std::string_view user, std::string_view mailbox) {
  std::lock_guard lock(read_mutex_);
  return guarded("list messages", [&] {
    std::vector<sdk::MessageEntry> entries;
    SQLite::Statement query(*reader_,
                            "SELECT m.id, m.uid, m.size, b.uidvalidity, m.flags, m.received FROM messages m "
                            "JOIN mailboxes b ON m.mailbox_id = b.id JOIN users u ON b.user_id = u.id "
                            "WHERE u.address = ? AND b.name = ? ORDER BY m.uid");
    query.bind(1, lower(user));
    query.bind(2, std::string(mailbox));
    while (query.executeStep()) {
      sdk::MessageEntry entry;
      entry.id = query.getColumn(0).getInt64();
      entry.uid = static_cast<std::uint32_t>(query.getColumn(1).getInt64());
      entry.size = static_cast<std::uint64_t>(query.getColumn(2).getInt64());
      entry.unique_id = fmt::format("{}.{}", query.getColumn(3).getInt64(), entry.uid);
      entry.flags = query.getColumn(4).getString();
      entry.received = query.getColumn(5).getInt64();
      entries.push_back(std::move(entry));
    }
    return entries;
  });
}

std::string SqliteStore::read_message(std::string_view user, std::int64_t id) {
  std::string hash;
  {
    std::lock_guard lock(read_mutex_);
    std::optional<std::string> body = guarded("read message", [&]() -> std::optional<std::string> {
      SQLite::Statement query(*reader_,
                              "SELECT m.blob, b.body FROM messages m JOIN mailboxes x ON m.mailbox_id = x.id "
                              "JOIN users u ON x.user_id = u.id JOIN blobs b ON b.hash = m.blob "
                              "WHERE u.address = ? AND m.id = ?");
      query.bind(1, lower(user));
      query.bind(2, id);
      if (!query.executeStep()) throw sdk::StoreError(fmt::format("no message {} for {}", id, user));
      hash = query.getColumn(0).getString();
      const SQLite::Column body = query.getColumn(1);
      if (body.isNull()) return std::nullopt;
      return std::string(static_cast<const char*>(body.getBlob()), static_cast<std::size_t>(body.getBytes()));
    });
    if (body) return std::move(*body);
  }
  return blobs_.read(hash);
}

void SqliteStore::remove_messages(std::string_view user, const std::vector<std::int64_t>& ids) {
  if (ids.empty()) return;
  std::lock_guard lock(mutex_);
  std::vector<std::string> unused = guarded("remove messages", [&] {
    SQLite::Transaction transaction(*db_);
    std::vector<std::string> hashes;
    SQLite::Statement remove(*db_,
                             "DELETE FROM messages WHERE id = ? AND mailbox_id IN (SELECT b.id FROM mailboxes b "
                             "JOIN users u ON b.user_id = u.id WHERE u.address = ?) RETURNING blob");
    for (std::int64_t id : ids) {
      remove.bind(1, id);
      remove.bind(2, lower(user));
      while (remove.executeStep()) hashes.push_back(remove.getColumn(0).getString());
      remove.reset();
    }
    std::vector<std::string> released = release_blobs(hashes);
    transaction.commit();
    return released;
  });
  for (const std::string& hash : unused) blobs_.remove(hash);
}

}  // namespace tern::store_sqlite
