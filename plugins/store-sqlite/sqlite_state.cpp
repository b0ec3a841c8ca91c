// The state part of the SQLite store: plugins' small durable entries, by space and key, each with an optional
// expiry after which it reads as absent until prune() deletes it.
#include <SQLiteCpp/SQLiteCpp.h>

#include "sqlite_store.hpp"
#include "store_queries.hpp"

namespace tern::store_sqlite {

std::optional<std::string> SqliteState::get(std::string_view space, std::string_view key) {
  const Database::Reader reader = db_.read();
  return guarded("read state", [&]() -> std::optional<std::string> {
    Connection::Query query =
        reader->query("SELECT value FROM state WHERE space = ? AND key = ? AND (expires = 0 OR expires > ?)");
    query->bind(1, std::string(space));
    query->bind(2, std::string(key));
    query->bind(3, now_seconds());
    if (!query->executeStep()) return std::nullopt;
    return query->getColumn(0).getString();
  });
}

std::vector<std::pair<std::string, std::string>> SqliteState::list(std::string_view space) {
  const Database::Reader reader = db_.read();
  return guarded("list state", [&] {
    std::vector<std::pair<std::string, std::string>> entries;
    Connection::Query query =
        reader->query("SELECT key, value FROM state WHERE space = ? AND (expires = 0 OR expires > ?) ORDER BY key");
    query->bind(1, std::string(space));
    query->bind(2, now_seconds());
    while (query->executeStep()) entries.emplace_back(query->getColumn(0).getString(), query->getColumn(1).getString());
    return entries;
  });
}

void SqliteState::put(const std::vector<sdk::StateChange>& changes) {
  std::lock_guard lock(db_.write_mutex);
  guarded("write state", [&] {
    SQLite::Transaction transaction = db_.write_transaction();
    write_state(*db_.writer, changes);
    transaction.commit();
  });
}

void SqliteState::erase(std::string_view space, std::string_view key) {
  std::lock_guard lock(db_.write_mutex);
  guarded("erase state", [&] {
    Connection::Query erase = db_.writer->query("DELETE FROM state WHERE space = ? AND key = ?");
    erase->bind(1, std::string(space));
    erase->bind(2, std::string(key));
    erase->exec();
  });
}

std::size_t SqliteState::prune(std::int64_t now, std::size_t limit) {
  std::lock_guard lock(db_.write_mutex);
  return guarded("prune state", [&] {
    Connection::Query prune = db_.writer->query(
        "DELETE FROM state WHERE rowid IN "
        "(SELECT rowid FROM state WHERE expires BETWEEN 1 AND ? LIMIT ?)");
    prune->bind(1, now);
    prune->bind(2, static_cast<std::int64_t>(limit));
    return static_cast<std::size_t>(prune->exec());
  });
}

}  // namespace tern::store_sqlite
