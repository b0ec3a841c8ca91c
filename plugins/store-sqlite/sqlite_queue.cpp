// The outbound queue of the SQLite store: listing, claiming due entries, writing back delivery results, and the
// administrator's hold, release, remove and flush. Entries are put on the queue by MailStore::receive() (receive.cpp).
#include "sqlite_store.hpp"
#include "store_queries.hpp"

namespace tern::store_sqlite {
namespace {

constexpr const char* kEntryColumns =
    "SELECT id, sender, size, created, next_attempt, attempts, held, delay_notified, smtputf8, ret, envid FROM queue ";

sdk::DeliveryStatus status_from_text(const std::string& text) {
  if (text == "held") return sdk::DeliveryStatus::held;
  if (text == "released") return sdk::DeliveryStatus::released;
  if (text == "delivered") return sdk::DeliveryStatus::delivered;
  if (text == "failed") return sdk::DeliveryStatus::failed;
  return sdk::DeliveryStatus::pending;
}

const char* status_text(sdk::DeliveryStatus status) {
  switch (status) {
    case sdk::DeliveryStatus::held: return "held";
    case sdk::DeliveryStatus::released: return "released";
    case sdk::DeliveryStatus::delivered: return "delivered";
    case sdk::DeliveryStatus::failed: return "failed";
    case sdk::DeliveryStatus::pending: break;
  }
  return "pending";
}

// Reads the entries a query of kEntryColumns selects, with their recipients in the order they were accepted.
std::vector<sdk::QueueEntry> read_entries(Connection& db, SQLite::Statement& query) {
  std::vector<sdk::QueueEntry> entries;
  Connection::Query recipients = db.query(
      "SELECT address, notify, orcpt, status, diagnostic, remote_host FROM queue_recipients "
      "WHERE queue_id = ? ORDER BY rowid");
  while (query.executeStep()) {
    sdk::QueueEntry entry;
    entry.id = query.getColumn(0).getInt64();
    entry.sender = query.getColumn(1).getString();
    entry.size = static_cast<std::uint64_t>(query.getColumn(2).getInt64());
    entry.created = query.getColumn(3).getInt64();
    entry.next_attempt = query.getColumn(4).getInt64();
    entry.attempts = static_cast<std::uint32_t>(query.getColumn(5).getInt64());
    entry.held = query.getColumn(6).getInt() != 0;
    entry.delay_notified = query.getColumn(7).getInt() != 0;
    entry.smtputf8 = query.getColumn(8).getInt() != 0;
    entry.ret = query.getColumn(9).getString();
    entry.envid = query.getColumn(10).getString();
    recipients->bind(1, entry.id);
    while (recipients->executeStep()) {
      entry.recipients.push_back({recipients->getColumn(0).getString(), recipients->getColumn(1).getString(),
                                  recipients->getColumn(2).getString(),
                                  status_from_text(recipients->getColumn(3).getString()),
                                  recipients->getColumn(4).getString(), recipients->getColumn(5).getString()});
    }
    recipients->reset();
    entries.push_back(std::move(entry));
  }
  return entries;
}

}  // namespace

std::vector<sdk::QueueEntry> SqliteQueue::list() {
  const Database::Reader reader = db_.read();
  return guarded("list queue", [&] {
    SQLite::Transaction snapshot(*reader);
    Connection::Query query = reader->query(std::string(kEntryColumns) + "ORDER BY id");
    return read_entries(*reader, *query);
  });
}

std::optional<sdk::QueueEntry> SqliteQueue::entry(std::int64_t id) {
  const Database::Reader reader = db_.read();
  return guarded("read queue entry", [&]() -> std::optional<sdk::QueueEntry> {
    SQLite::Transaction snapshot(*reader);
    Connection::Query query = reader->query(std::string(kEntryColumns) + "WHERE id = ?");
    query->bind(1, id);
    std::vector<sdk::QueueEntry> entries = read_entries(*reader, *query);
    if (entries.empty()) return std::nullopt;
    return std::move(entries.front());
  });
}

std::vector<sdk::QueueEntry> SqliteQueue::claim(std::int64_t now, std::int64_t lease_until, std::size_t limit) {
  std::lock_guard lock(db_.write_mutex);
  return guarded("claim queue entries", [&] {
    SQLite::Transaction transaction = db_.write_transaction();
    Connection::Query query = db_.writer->query(std::string(kEntryColumns) +
                                                "WHERE next_attempt <= ?1 AND leased_until <= ?1 AND held = 0 "
                                                "ORDER BY next_attempt, id LIMIT ?2");
    query->bind(1, now);
    query->bind(2, static_cast<std::int64_t>(limit));
    std::vector<sdk::QueueEntry> entries = read_entries(*db_.writer, *query);
    Connection::Query lease = db_.writer->query("UPDATE queue SET leased_until = ?, flushed = 0 WHERE id = ?");
    for (const sdk::QueueEntry& entry : entries) {
      lease->bind(1, lease_until);
      lease->bind(2, entry.id);
      lease->exec();
      lease->reset();
    }
    transaction.commit();
    return entries;
  });
}

std::string SqliteQueue::read(std::int64_t id) {
  std::string hash;
  {
    const Database::Reader reader = db_.read();
    std::optional<std::string> inline_body = guarded("read queued message", [&]() -> std::optional<std::string> {
      Connection::Query query =
          reader->query("SELECT q.blob, b.body FROM queue q JOIN blobs b ON b.hash = q.blob WHERE q.id = ?");
      query->bind(1, id);
      if (!query->executeStep()) throw sdk::StoreError(fmt::format("no queue entry {}", id));
      const SQLite::Column body = query->getColumn(1);
      if (body.isNull()) {
        hash = query->getColumn(0).getString();
        return std::nullopt;
      }
      return std::string(static_cast<const char*>(body.getBlob()), static_cast<std::size_t>(body.getBytes()));
    });
    if (inline_body) return std::move(*inline_body);
  }
  return db_.blobs.read(hash);
}

void SqliteQueue::update(const std::vector<sdk::QueueEntry>& entries) {
  if (entries.empty()) return;
  std::lock_guard lock(db_.write_mutex);
  std::vector<std::string> unused = guarded("update queue", [&] {
    SQLite::Transaction transaction = db_.write_transaction();
    Connection::Query rows = db_.writer->query("SELECT rowid FROM queue_recipients WHERE queue_id = ? ORDER BY rowid");
    // A flush while the entry was out (`tern queue flush DOMAIN`) is not undone by what the deliverer writes:
    // its released recipients stay released, and the entry stays due.
    Connection::Query recipient = db_.writer->query(
        "UPDATE queue_recipients SET status = CASE WHEN status = 'released' AND ?1 = 'held' "
        "AND (SELECT flushed FROM queue WHERE id = queue_id) THEN 'released' ELSE ?1 END, "
        "diagnostic = ?2, remote_host = ?3 WHERE rowid = ?4");
    Connection::Query entry_update = db_.writer->query(
        "UPDATE queue SET next_attempt = CASE WHEN flushed THEN min(?1, ?5) ELSE ?1 END, "
        "attempts = ?2, delay_notified = ?3, leased_until = 0, flushed = 0 WHERE id = ?4");
    Connection::Query remove = db_.writer->query("DELETE FROM queue WHERE id = ? RETURNING blob");
    std::vector<std::string> hashes;
    for (const sdk::QueueEntry& entry : entries) {
      std::vector<std::int64_t> row_ids;
      rows->bind(1, entry.id);
      while (rows->executeStep()) row_ids.push_back(rows->getColumn(0).getInt64());
      rows->reset();
      // Removed meanwhile (`tern queue remove`), or not the entry that was claimed.
      if (row_ids.size() != entry.recipients.size()) continue;
      bool open = false;
      for (std::size_t i = 0; i < row_ids.size(); ++i) {
        const sdk::QueueRecipient& r = entry.recipients[i];
        open = open || r.status == sdk::DeliveryStatus::pending || r.status == sdk::DeliveryStatus::held ||
               r.status == sdk::DeliveryStatus::released;
        recipient->bind(1, status_text(r.status));
        recipient->bind(2, r.diagnostic);
        recipient->bind(3, r.remote_host);
        recipient->bind(4, row_ids[i]);
        recipient->exec();
        recipient->reset();
      }
      if (open) {
        entry_update->bind(1, entry.next_attempt);
        entry_update->bind(2, static_cast<std::int64_t>(entry.attempts));
        entry_update->bind(3, entry.delay_notified ? 1 : 0);
        entry_update->bind(4, entry.id);
        entry_update->bind(5, now_seconds());
        entry_update->exec();
        entry_update->reset();
      } else {
        remove->bind(1, entry.id);
        if (remove->executeStep()) hashes.push_back(remove->getColumn(0).getString());
        remove->reset();
      }
    }
    std::vector<std::string> released = db_.release_blobs(hashes);
    transaction.commit();
    return released;
  });
  for (const std::string& hash : unused) db_.blobs.remove(hash);
}

bool SqliteQueue::remove(std::int64_t id) {
  std::lock_guard lock(db_.write_mutex);
  std::optional<std::vector<std::string>> unused = guarded("remove queue entry", [&] {
    SQLite::Transaction transaction = db_.write_transaction();
    Connection::Query remove = db_.writer->query("DELETE FROM queue WHERE id = ? RETURNING blob");
    remove->bind(1, id);
    if (!remove->executeStep()) return std::optional<std::vector<std::string>>();
    std::vector<std::string> hashes{remove->getColumn(0).getString()};
    remove->reset();
    std::vector<std::string> released = db_.release_blobs(hashes);
    transaction.commit();
    return std::optional<std::vector<std::string>>(std::move(released));
  });
  if (!unused) return false;
  for (const std::string& hash : *unused) db_.blobs.remove(hash);
  return true;
}

bool SqliteQueue::hold(std::int64_t id, bool held) {
  std::lock_guard lock(db_.write_mutex);
  return guarded("hold queue entry", [&] {
    // Released, it is due at once.
    Connection::Query update = db_.writer->query(
        "UPDATE queue SET held = ?1, next_attempt = CASE WHEN ?1 THEN next_attempt ELSE ?3 END "
        "WHERE id = ?2");
    update->bind(1, held ? 1 : 0);
    update->bind(2, id);
    update->bind(3, now_seconds());
    return update->exec() > 0;
  });
}

std::size_t SqliteQueue::flush(std::string_view domain, std::int64_t now) {
  std::lock_guard lock(db_.write_mutex);
  return guarded("flush queue", [&] {
    SQLite::Transaction transaction = db_.write_transaction();
    std::size_t flushed = 0;
    if (domain.empty()) {
      Connection::Query all =
          db_.writer->query("UPDATE queue SET next_attempt = ?1, flushed = 1 WHERE held = 0 AND next_attempt > ?2");
      all->bind(1, now);
      all->bind(2, now);
      flushed = static_cast<std::size_t>(all->exec());
    } else {
      // The domain part after the '@', in any case: the queue keeps recipients as the client wrote them.
      const std::string suffix = "@" + lower_ascii(domain);
      Connection::Query release = db_.writer->query(
          "UPDATE queue_recipients SET status = 'released' WHERE status = 'held' AND "
          "lower(substr(address, -length(?1))) = ?1");
      release->bind(1, suffix);
      release->exec();
      Connection::Query due = db_.writer->query(
          "UPDATE queue SET next_attempt = ?2, flushed = 1 WHERE held = 0 AND id IN (SELECT "
          "queue_id FROM queue_recipients WHERE status IN ('pending', 'released') AND "
          "lower(substr(address, -length(?1))) = ?1)");
      due->bind(1, suffix);
      due->bind(2, now);
      flushed = static_cast<std::size_t>(due->exec());
    }
    transaction.commit();
    return flushed;
  });
}

}  // namespace tern::store_sqlite
