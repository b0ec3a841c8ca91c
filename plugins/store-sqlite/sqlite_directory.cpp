// The directory part of the SQLite store: domains, users with their password hashes and default mailboxes,
// aliases and catch-alls, and the expansion of an address into the users and outside addresses it reaches.
#include <fmt/format.h>

#include <SQLiteCpp/SQLiteCpp.h>
#include <algorithm>

#include "sqlite_store.hpp"
#include "store_queries.hpp"

namespace tern::store_sqlite {
namespace {

constexpr int kMaxAliasDepth = 8;

// Every user's mailboxes from the start (RFC 6154 special uses).
constexpr std::pair<const char*, const char*> kDefaultMailboxes[] = {
    {"INBOX", ""},        {"Sent", "\\Sent"}, {"Drafts", "\\Drafts"},
    {"Trash", "\\Trash"}, {"Junk", "\\Junk"}, {"Archive", "\\Archive"},
};

bool contains(const std::vector<std::string>& list, const std::string& value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

std::vector<std::string> alias_targets(Connection& db, const std::string& source) {
  std::vector<std::string> targets;
  Connection::Query query = db.query("SELECT target FROM aliases WHERE source = ? ORDER BY id");
  query->bind(1, source);
  while (query->executeStep()) targets.push_back(query->getColumn(0).getString());
  return targets;
}

void expand_into(Connection& db, const std::string& address, int depth, sdk::RecipientExpansion& expansion) {
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

bool SqliteDirectory::is_local_domain(std::string_view domain) {
  const Database::Reader reader = db_.read();
  return guarded("look up domain", [&] { return domain_id(*reader, lower_ascii(domain)) != 0; });
}

void SqliteDirectory::add_domain(std::string_view domain) {
  std::lock_guard lock(db_.write_mutex);
  std::string name = lower_ascii(domain);
  guarded("add domain", [&] {
    if (domain_id(*db_.writer, name) != 0) throw sdk::DirectoryError(fmt::format("domain {} exists already", name));
    Connection::Query insert = db_.writer->query("INSERT INTO domains (name) VALUES (?)");
    insert->bind(1, name);
    insert->exec();
  });
}

void SqliteDirectory::remove_domain(std::string_view domain) {
  std::lock_guard lock(db_.write_mutex);
  std::string name = lower_ascii(domain);
  guarded("remove domain", [&] {
    std::int64_t id = domain_id(*db_.writer, name);
    if (id == 0) throw sdk::DirectoryError(fmt::format("domain {} does not exist", name));
    Connection::Query users = db_.writer->query(
        "SELECT (SELECT count(*) FROM users WHERE domain_id = ?1) + "
        "(SELECT count(*) FROM aliases WHERE domain_id = ?1)");
    users->bind(1, id);
    users->executeStep();
    if (users->getColumn(0).getInt64() > 0) {
      throw sdk::DirectoryError(fmt::format("domain {} still has users or aliases; remove them first", name));
    }
    Connection::Query remove = db_.writer->query("DELETE FROM domains WHERE id = ?");
    remove->bind(1, id);
    remove->exec();
  });
}

std::vector<std::string> SqliteDirectory::list_domains() {
  const Database::Reader reader = db_.read();
  return guarded("list domains", [&] {
    std::vector<std::string> names;
    Connection::Query query = reader->query("SELECT name FROM domains ORDER BY name");
    while (query->executeStep()) names.push_back(query->getColumn(0).getString());
    return names;
  });
}

void SqliteDirectory::add_user(std::string_view address, std::string_view password_hash) {
  std::lock_guard lock(db_.write_mutex);
  std::string name = lower_ascii(address);
  guarded("add user", [&] {
    std::int64_t domain = domain_id(*db_.writer, domain_of(name));
    if (domain == 0) throw sdk::DirectoryError(fmt::format("{} is not a local domain; add it first", domain_of(name)));
    if (user_id(*db_.writer, name)) throw sdk::DirectoryError(fmt::format("user {} exists already", name));
    SQLite::Transaction transaction = db_.write_transaction();
    Connection::Query insert =
        db_.writer->query("INSERT INTO users (address, domain_id, password_hash) VALUES (?, ?, ?)");
    insert->bind(1, name);
    insert->bind(2, domain);
    insert->bind(3, std::string(password_hash));
    insert->exec();
    const std::int64_t user = db_.writer->getLastInsertRowid();
    Connection::Query mailbox =
        db_.writer->query("INSERT INTO mailboxes (user_id, name, uidvalidity, special_use) VALUES (?, ?, ?, ?)");
    const std::int64_t uidvalidity = next_uidvalidity(*db_.writer);
    for (const auto& [name, special_use] : kDefaultMailboxes) {
      mailbox->bind(1, user);
      mailbox->bind(2, name);
      mailbox->bind(3, uidvalidity);
      mailbox->bind(4, special_use);
      mailbox->exec();
      mailbox->reset();
    }
    transaction.commit();
  });
}

void SqliteDirectory::set_password_hash(std::string_view address, std::string_view password_hash) {
  std::lock_guard lock(db_.write_mutex);
  std::string name = lower_ascii(address);
  guarded("set password", [&] {
    Connection::Query update = db_.writer->query("UPDATE users SET password_hash = ? WHERE address = ?");
    update->bind(1, std::string(password_hash));
    update->bind(2, name);
    if (update->exec() == 0) throw sdk::DirectoryError(fmt::format("user {} does not exist", name));
  });
}

void SqliteDirectory::remove_user(std::string_view address) {
  std::lock_guard lock(db_.write_mutex);
  std::string name = lower_ascii(address);
  std::vector<std::string> unused = guarded("remove user", [&] {
    auto id = user_id(*db_.writer, name);
    if (!id) throw sdk::DirectoryError(fmt::format("user {} does not exist", name));
    SQLite::Transaction transaction = db_.write_transaction();
    std::vector<std::string> hashes;
    Connection::Query held =
        db_.writer->query("SELECT m.blob FROM messages m JOIN mailboxes b ON m.mailbox_id = b.id WHERE b.user_id = ?");
    held->bind(1, *id);
    while (held->executeStep()) hashes.push_back(held->getColumn(0).getString());
    Connection::Query remove = db_.writer->query("DELETE FROM users WHERE id = ?");
    remove->bind(1, *id);
    remove->exec();
    std::vector<std::string> released = db_.release_blobs(hashes);
    transaction.commit();
    return released;
  });
  for (const std::string& hash : unused) db_.blobs.remove(hash);
}

std::vector<std::string> SqliteDirectory::list_users(std::string_view domain) {
  const Database::Reader reader = db_.read();
  return guarded("list users", [&] {
    std::vector<std::string> names;
    Connection::Query query = reader->query(
        "SELECT u.address FROM users u JOIN domains d ON u.domain_id = d.id "
        "WHERE ?1 = '' OR d.name = ?1 ORDER BY u.address");
    query->bind(1, lower_ascii(domain));
    while (query->executeStep()) names.push_back(query->getColumn(0).getString());
    return names;
  });
}

std::optional<std::string> SqliteDirectory::password_hash(std::string_view address) {
  const Database::Reader reader = db_.read();
  return guarded("look up user", [&]() -> std::optional<std::string> {
    Connection::Query query = reader->query("SELECT password_hash FROM users WHERE address = ?");
    query->bind(1, lower_ascii(address));
    if (!query->executeStep()) return std::nullopt;
    return query->getColumn(0).getString();
  });
}

void SqliteDirectory::add_alias(std::string_view source, std::string_view target) {
  std::lock_guard lock(db_.write_mutex);
  std::string from = lower_ascii(source);
  std::string to = lower_ascii(target);
  guarded("add alias", [&] {
    // "@domain" is the domain's catch-all.
    std::int64_t domain = domain_id(*db_.writer, from.front() == '@' ? from.substr(1) : domain_of(from));
    if (domain == 0) throw sdk::DirectoryError(fmt::format("{} is not a local domain; add it first", domain_of(from)));
    if (from == to) throw sdk::DirectoryError("an alias cannot point to itself");
    Connection::Query insert =
        db_.writer->query("INSERT OR IGNORE INTO aliases (source, target, domain_id) VALUES (?, ?, ?)");
    insert->bind(1, from);
    insert->bind(2, to);
    insert->bind(3, domain);
    if (insert->exec() == 0) throw sdk::DirectoryError(fmt::format("alias {} -> {} exists already", from, to));
  });
}

void SqliteDirectory::remove_alias(std::string_view source, std::string_view target) {
  std::lock_guard lock(db_.write_mutex);
  guarded("remove alias", [&] {
    Connection::Query remove = db_.writer->query("DELETE FROM aliases WHERE source = ? AND target = ?");
    remove->bind(1, lower_ascii(source));
    remove->bind(2, lower_ascii(target));
    if (remove->exec() == 0) {
      throw sdk::DirectoryError(fmt::format("no alias {} -> {}", lower_ascii(source), lower_ascii(target)));
    }
  });
}

std::vector<sdk::AliasEntry> SqliteDirectory::list_aliases(std::string_view domain) {
  const Database::Reader reader = db_.read();
  return guarded("list aliases", [&] {
    std::vector<sdk::AliasEntry> entries;
    Connection::Query query = reader->query(
        "SELECT a.source, a.target FROM aliases a JOIN domains d ON a.domain_id = d.id "
        "WHERE ?1 = '' OR d.name = ?1 ORDER BY a.source, a.target");
    query->bind(1, lower_ascii(domain));
    while (query->executeStep()) entries.push_back({query->getColumn(0).getString(), query->getColumn(1).getString()});
    return entries;
  });
}

sdk::RecipientExpansion SqliteDirectory::expand_recipient(std::string_view address) {
  const Database::Reader reader = db_.read();
  return guarded("resolve recipient", [&] {
    sdk::RecipientExpansion expansion;
    expand_into(*reader, lower_ascii(address), 0, expansion);
    return expansion;
  });
}

}  // namespace tern::store_sqlite
