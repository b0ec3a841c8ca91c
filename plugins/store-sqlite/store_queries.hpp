// What the store's source files share: address helpers, the mapping of SQLite errors, and small lookups.
#pragma once

#include <fmt/format.h>

#include <SQLiteCpp/SQLiteCpp.h>
#include <sqlite3.h>
#include <algorithm>
#include <chrono>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "tern/sdk/address.hpp"
#include "tern/sdk/store.hpp"

namespace tern::store_sqlite {

using sdk::domain_of;
using sdk::lower_ascii;

inline std::int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Whether a failure is the disk's or the database's being full: SQLite's own code, or a full blob folder.
inline bool is_full(const std::exception& failure) {
  if (dynamic_cast<const sdk::StoreFull*>(&failure) != nullptr) return true;
  const auto* sqlite = dynamic_cast<const SQLite::Exception*>(&failure);
  return sqlite != nullptr && sqlite->getErrorCode() == SQLITE_FULL;
}

// `failure` as the StoreError callers get, prefixed with what was being done; StoreFull when it is.
inline std::exception_ptr store_error(std::string_view what, const std::exception& failure) {
  const std::string message = fmt::format("{}: {}", what, failure.what());
  if (is_full(failure)) return std::make_exception_ptr(sdk::StoreFull(message));
  return std::make_exception_ptr(sdk::StoreError(message));
}

// Every SQLite failure becomes a StoreError (StoreFull for a full disk), which callers answer with a temporary
// failure.
template <typename Work>
auto guarded(const char* what, Work work) {
  try {
    return work();
  } catch (const SQLite::Exception& error) {
    std::rethrow_exception(store_error(what, error));
  }
}

inline std::int64_t domain_id(Connection& db, const std::string& domain) {
  Connection::Query query = db.query("SELECT id FROM domains WHERE name = ?");
  query->bind(1, domain);
  return query->executeStep() ? query->getColumn(0).getInt64() : 0;
}

inline std::optional<std::int64_t> user_id(Connection& db, const std::string& address) {
  Connection::Query query = db.query("SELECT id FROM users WHERE address = ?");
  query->bind(1, address);
  if (!query->executeStep()) return std::nullopt;
  return query->getColumn(0).getInt64();
}

// A user's mailbox: its id and UIDVALIDITY.
inline std::optional<std::pair<std::int64_t, std::int64_t>> find_mailbox(Connection& db, std::string_view user,
                                                                         std::string_view mailbox) {
  Connection::Query query = db.query(
      "SELECT b.id, b.uidvalidity FROM mailboxes b JOIN users u ON b.user_id = u.id "
      "WHERE u.address = ? AND b.name = ?");
  query->bind(1, lower_ascii(user));
  query->bind(2, std::string(mailbox));
  if (!query->executeStep()) return std::nullopt;
  return std::pair{query->getColumn(0).getInt64(), query->getColumn(1).getInt64()};
}

// Writes state changes (sdk::StateChange) inside the caller's transaction.
inline void write_state(Connection& db, const std::vector<sdk::StateChange>& changes) {
  if (changes.empty()) return;
  Connection::Query put = db.query(
      "INSERT INTO state (space, key, value, expires) VALUES (?1, ?2, ?3, ?4) "
      "ON CONFLICT (space, key) DO UPDATE SET value = ?3, expires = ?4");
  for (const sdk::StateChange& change : changes) {
    put->bind(1, change.space);
    put->bind(2, change.key);
    put->bind(3, change.value);
    put->bind(4, change.expires);
    put->exec();
    put->reset();
  }
}

// A UIDVALIDITY for a mailbox made now: the time, or one more than the last one given when that is later, so a
// mailbox deleted and made again within the same second still gets a new one (RFC 3501 section 2.3.1.1).
// Call it inside the transaction that creates the mailbox.
inline std::int64_t next_uidvalidity(Connection& db) {
  Connection::Query next = db.query(
      "INSERT INTO counters (name, value) VALUES ('uidvalidity', ?1) ON CONFLICT (name) DO UPDATE "
      "SET value = max(?1, value + 1) RETURNING value");
  next->bind(1, now_seconds());
  next->executeStep();
  return next->getColumn(0).getInt64();
}

}  // namespace tern::store_sqlite
