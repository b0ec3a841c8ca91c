// The mailboxes part of the SQLite store: quotas, mailboxes, messages, flags and change numbers.
#include <fmt/format.h>

#include <SQLiteCpp/SQLiteCpp.h>
#include <algorithm>
#include <ctime>
#include <sstream>
#include <unordered_map>

#include "sqlite_store.hpp"
#include "store_queries.hpp"

namespace tern::store_sqlite {

namespace {

// A listing of messages: what it selects (in the order entry_of() reads it), then `rest` (FROM, WHERE, ORDER).
std::string select_entries(std::string_view rest) {
  return fmt::format("SELECT m.id, m.uid, m.size, b.uidvalidity, m.flags, m.received, m.modseq, m.blob {}", rest);
}

sdk::MessageEntry entry_of(SQLite::Statement& row) {
  sdk::MessageEntry entry;
  entry.id = row.getColumn(0).getInt64();
  entry.uid = static_cast<std::uint32_t>(row.getColumn(1).getInt64());
  entry.size = static_cast<std::uint64_t>(row.getColumn(2).getInt64());
  entry.unique_id = fmt::format("{}.{}", row.getColumn(3).getInt64(), entry.uid);
  entry.flags = row.getColumn(4).getString();
  entry.received = row.getColumn(5).getInt64();
  entry.modseq = static_cast<std::uint64_t>(row.getColumn(6).getInt64());
  entry.content_id = row.getColumn(7).getString();
  return entry;
}

// The UIDs the expunge record holds for mailbox `id` after change number `modseq`, ascending.
std::vector<std::uint32_t> expunged_after(Connection& connection, std::int64_t id, std::uint64_t modseq) {
  std::vector<std::uint32_t> uids;
  Connection::Query query =
      connection.query("SELECT uid FROM expunged WHERE mailbox_id = ? AND modseq > ? ORDER BY uid");
  query->bind(1, id);
  query->bind(2, static_cast<std::int64_t>(modseq));
  while (query->executeStep()) uids.push_back(static_cast<std::uint32_t>(query->getColumn(0).getInt64()));
  return uids;
}

}  // namespace

sdk::QuotaInfo SqliteMailboxes::quota(std::string_view address) {
  const Database::Reader reader = db_.read();
  return guarded("read quota", [&] {
    // Usage is kept up to date by triggers on messages (see the schema): reading it costs one row.
    Connection::Query query = reader->query(
        "SELECT coalesce(q.storage_limit, 0), coalesce(q.messages_limit, 0), "
        "coalesce(s.octets, 0), coalesce(s.messages, 0) FROM users u "
        "LEFT JOIN quotas q ON q.user_id = u.id LEFT JOIN usage s ON s.user_id = u.id "
        "WHERE u.address = ?");
    query->bind(1, lower_ascii(address));
    if (!query->executeStep()) throw sdk::DirectoryError(fmt::format("user {} does not exist", lower_ascii(address)));
    sdk::QuotaInfo info;
    info.storage_limit = static_cast<std::uint64_t>(query->getColumn(0).getInt64());
    info.messages_limit = static_cast<std::uint64_t>(query->getColumn(1).getInt64());
    info.storage_used = static_cast<std::uint64_t>(query->getColumn(2).getInt64());
    info.messages_used = static_cast<std::uint64_t>(query->getColumn(3).getInt64());
    return info;
  });
}

void SqliteMailboxes::set_quota(std::string_view address, std::uint64_t storage_limit, std::uint64_t messages_limit) {
  std::lock_guard lock(db_.write_mutex);
  guarded("set quota", [&] {
    const std::string name = lower_ascii(address);
    auto id = user_id(*db_.writer, name);
    if (!id) throw sdk::DirectoryError(fmt::format("user {} does not exist", name));
    Connection::Query upsert = db_.writer->query(
        "INSERT INTO quotas (user_id, storage_limit, messages_limit) VALUES (?1, ?2, ?3) "
        "ON CONFLICT (user_id) DO UPDATE SET storage_limit = ?2, messages_limit = ?3");
    upsert->bind(1, *id);
    upsert->bind(2, static_cast<std::int64_t>(storage_limit));
    upsert->bind(3, static_cast<std::int64_t>(messages_limit));
    upsert->exec();
  });
}

sdk::MessageEntry SqliteMailboxes::append_message(std::string_view user, std::string_view mailbox,
                                                  std::string_view message, std::string_view flags,
                                                  std::int64_t received) {
  std::optional<std::pair<std::int64_t, std::int64_t>> target;
  {
    const Database::Reader reader = db_.read();
    target = guarded("find mailbox", [&] { return find_mailbox(*reader, user, mailbox); });
  }
  if (!target) throw sdk::StoreError(fmt::format("no mailbox {}", mailbox));
  sdk::Intake intake;
  intake.filings.push_back({lower_ascii(user), std::string(mailbox), std::string(flags)});
  intake.received = received;
  sdk::MessageEntry entry;
  entry.uid = db_.file(message, intake);
  entry.size = message.size();
  entry.flags = std::string(flags);
  entry.received = received;
  entry.unique_id = fmt::format("{}.{}", target->second, entry.uid);
  return entry;
}

std::pair<std::uint32_t, std::vector<std::pair<std::uint32_t, std::uint32_t>>> SqliteMailboxes::copy_messages(
    std::string_view user, const std::vector<std::int64_t>& ids, std::string_view mailbox) {
  std::lock_guard lock(db_.write_mutex);
  return guarded("copy messages", [&] {
    auto target = find_mailbox(*db_.writer, user, mailbox);
    if (!target) throw sdk::StoreError(fmt::format("no mailbox {}", mailbox));
    std::vector<std::pair<std::uint32_t, std::uint32_t>> uids;
    SQLite::Transaction transaction = db_.write_transaction();
    Connection::Query source = db_.writer->query(
        "SELECT m.uid, m.blob, m.size, m.received, m.flags FROM messages m "
        "JOIN mailboxes b ON m.mailbox_id = b.id JOIN users u ON b.user_id = u.id "
        "WHERE m.id = ? AND u.address = ?");
    Connection::Query next = db_.writer->query(
        "UPDATE mailboxes SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1 "
        "WHERE id = ? RETURNING uidnext - 1, highestmodseq");
    Connection::Query insert = db_.writer->query(
        "INSERT INTO messages (mailbox_id, uid, blob, size, received, flags, modseq) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)");
    Connection::Query reference = db_.writer->query("UPDATE blobs SET refs = refs + 1 WHERE hash = ?");
    for (std::int64_t id : ids) {
      source->bind(1, id);
      source->bind(2, lower_ascii(user));
      if (!source->executeStep()) {
        source->reset();
        continue;
      }
      next->bind(1, target->first);
      next->executeStep();
      const auto uid = static_cast<std::uint32_t>(next->getColumn(0).getInt64());
      insert->bind(7, next->getColumn(1).getInt64());
      next->reset();
      insert->bind(1, target->first);
      insert->bind(2, static_cast<std::int64_t>(uid));
      insert->bind(3, source->getColumn(1).getString());
      insert->bind(4, source->getColumn(2).getInt64());
      insert->bind(5, source->getColumn(3).getInt64());
      insert->bind(6, source->getColumn(4).getString());
      insert->exec();
      insert->reset();
      reference->bind(1, source->getColumn(1).getString());
      reference->exec();
      reference->reset();
      uids.emplace_back(static_cast<std::uint32_t>(source->getColumn(0).getInt64()), uid);
      source->reset();
    }
    transaction.commit();
    return std::pair{static_cast<std::uint32_t>(target->second), uids};
  });
}

void SqliteMailboxes::create_mailbox(std::string_view user, std::string_view mailbox, std::string_view special_use) {
  std::lock_guard lock(db_.write_mutex);
  guarded("create mailbox", [&] {
    auto id = user_id(*db_.writer, lower_ascii(user));
    if (!id) throw sdk::DirectoryError(fmt::format("user {} does not exist", user));
    if (find_mailbox(*db_.writer, user, mailbox)) throw sdk::DirectoryError(fmt::format("{} exists already", mailbox));
    Connection::Query insert =
        db_.writer->query("INSERT INTO mailboxes (user_id, name, uidvalidity, special_use) VALUES (?, ?, ?, ?)");
    insert->bind(1, *id);
    insert->bind(2, std::string(mailbox));
    insert->bind(3, next_uidvalidity(*db_.writer));
    insert->bind(4, std::string(special_use));
    insert->exec();
  });
}

void SqliteMailboxes::delete_mailbox(std::string_view user, std::string_view mailbox) {
  std::lock_guard lock(db_.write_mutex);
  std::vector<std::string> unused = guarded("delete mailbox", [&] {
    if (mailbox == "INBOX") throw sdk::DirectoryError("INBOX cannot be deleted");
    auto target = find_mailbox(*db_.writer, user, mailbox);
    if (!target) throw sdk::DirectoryError(fmt::format("no mailbox {}", mailbox));
    Connection::Query children = db_.writer->query(
        "SELECT count(*) FROM mailboxes b JOIN users u ON b.user_id = u.id "
        "WHERE u.address = ? AND substr(b.name, 1, ?) = ?");
    const std::string prefix = std::string(mailbox) + "/";
    children->bind(1, lower_ascii(user));
    children->bind(2, static_cast<std::int64_t>(prefix.size()));
    children->bind(3, prefix);
    children->executeStep();
    if (children->getColumn(0).getInt64() > 0) throw sdk::DirectoryError(fmt::format("{} has children", mailbox));
    SQLite::Transaction transaction = db_.write_transaction();
    std::vector<std::string> hashes;
    Connection::Query held = db_.writer->query("SELECT blob FROM messages WHERE mailbox_id = ?");
    held->bind(1, target->first);
    while (held->executeStep()) hashes.push_back(held->getColumn(0).getString());
    // The messages go first, while their mailbox still says whose usage they count in.
    Connection::Query messages = db_.writer->query("DELETE FROM messages WHERE mailbox_id = ?");
    messages->bind(1, target->first);
    messages->exec();
    Connection::Query remove = db_.writer->query("DELETE FROM mailboxes WHERE id = ?");
    remove->bind(1, target->first);
    remove->exec();
    std::vector<std::string> released = db_.release_blobs(hashes);
    transaction.commit();
    return released;
  });
  for (const std::string& hash : unused) db_.blobs.remove(hash);
}

void SqliteMailboxes::rename_mailbox(std::string_view user, std::string_view from, std::string_view to) {
  std::lock_guard lock(db_.write_mutex);
  guarded("rename mailbox", [&] {
    if (from == "INBOX" || to == "INBOX") throw sdk::DirectoryError("INBOX cannot be renamed");
    if (!find_mailbox(*db_.writer, user, from)) throw sdk::DirectoryError(fmt::format("no mailbox {}", from));
    if (find_mailbox(*db_.writer, user, to)) throw sdk::DirectoryError(fmt::format("{} exists already", to));
    // The mailbox and its children move together; each keeps its UIDVALIDITY and UIDs.
    Connection::Query rename = db_.writer->query(
        "UPDATE mailboxes SET name = ?3 || substr(name, length(?2) + 1) "
        "WHERE user_id = (SELECT id FROM users WHERE address = ?1) "
        "AND (name = ?2 OR substr(name, 1, length(?2) + 1) = ?2 || '/')");
    rename->bind(1, lower_ascii(user));
    rename->bind(2, std::string(from));
    rename->bind(3, std::string(to));
    rename->exec();
  });
}

std::vector<sdk::MailboxInfo> SqliteMailboxes::list_mailboxes(std::string_view user) {
  const Database::Reader reader = db_.read();
  return guarded("list mailboxes", [&] {
    std::vector<sdk::MailboxInfo> mailboxes;
    Connection::Query query = reader->query(
        "SELECT b.name, b.special_use, b.uidvalidity, b.uidnext, count(m.id), b.highestmodseq, "
        "count(m.id) - count(CASE WHEN ' ' || m.flags || ' ' LIKE '% \\Seen %' THEN 1 END) "
        "FROM mailboxes b JOIN users u ON b.user_id = u.id LEFT JOIN messages m ON m.mailbox_id = b.id "
        "WHERE u.address = ? GROUP BY b.id ORDER BY b.name = 'INBOX' DESC, b.name");
    query->bind(1, lower_ascii(user));
    while (query->executeStep()) {
      mailboxes.push_back({query->getColumn(0).getString(), query->getColumn(1).getString(),
                           static_cast<std::uint32_t>(query->getColumn(2).getInt64()),
                           static_cast<std::uint32_t>(query->getColumn(3).getInt64()),
                           static_cast<std::uint32_t>(query->getColumn(4).getInt64()),
                           static_cast<std::uint32_t>(query->getColumn(6).getInt64()),
                           static_cast<std::uint64_t>(query->getColumn(5).getInt64())});
    }
    return mailboxes;
  });
}

sdk::FlagResult SqliteMailboxes::change_flags(std::string_view user, const std::vector<std::int64_t>& ids,
                                              sdk::FlagChange change, const std::vector<std::string>& flags,
                                              std::optional<std::uint64_t> unchanged_since) {
  sdk::FlagResult result;
  std::lock_guard lock(db_.write_mutex);
  guarded("change flags", [&] {
    const Database::Unflushed unflushed(db_);
    SQLite::Transaction transaction = db_.write_transaction();
    // The user's mailboxes and their change numbers, advanced here and written back once at the end.
    std::unordered_map<std::int64_t, std::int64_t> highest;
    Connection::Query mailboxes = db_.writer->query(
        "SELECT b.id, b.highestmodseq FROM mailboxes b JOIN users u ON b.user_id = u.id "
        "WHERE u.address = ?");
    mailboxes->bind(1, lower_ascii(user));
    while (mailboxes->executeStep()) highest[mailboxes->getColumn(0).getInt64()] = mailboxes->getColumn(1).getInt64();
    std::unordered_map<std::int64_t, std::int64_t> start = highest;
    Connection::Query current = db_.writer->query(
        "SELECT id, uid, size, flags, received, modseq, blob, mailbox_id FROM messages "
        "WHERE id = ?");
    Connection::Query update = db_.writer->query("UPDATE messages SET flags = ?, modseq = ? WHERE id = ?");
    const auto same = [](const std::string& a, const std::string& b) { return lower_ascii(a) == lower_ascii(b); };
    for (std::int64_t id : ids) {
      current->bind(1, id);
      const bool exists = current->executeStep();
      const auto mailbox = exists ? highest.find(current->getColumn(7).getInt64()) : highest.end();
      if (mailbox == highest.end()) {  // gone, or another user's
        current->reset();
        continue;
      }
      sdk::MessageEntry entry;
      entry.id = id;
      entry.uid = static_cast<std::uint32_t>(current->getColumn(1).getInt64());
      entry.size = static_cast<std::uint64_t>(current->getColumn(2).getInt64());
      entry.flags = current->getColumn(3).getString();
      entry.received = current->getColumn(4).getInt64();
      entry.modseq = static_cast<std::uint64_t>(current->getColumn(5).getInt64());
      entry.content_id = current->getColumn(6).getString();
      current->reset();
      if (unchanged_since && entry.modseq > *unchanged_since) {
        result.modified.push_back(id);
        continue;
      }
      std::vector<std::string> before;
      std::istringstream words(entry.flags);
      for (std::string word; words >> word;) before.push_back(word);
      std::vector<std::string> now = change == sdk::FlagChange::replace ? std::vector<std::string>{} : before;
      if (change == sdk::FlagChange::remove) {
        std::erase_if(now, [&](const std::string& flag) {
          return std::any_of(flags.begin(), flags.end(), [&](const std::string& gone) { return same(gone, flag); });
        });
      } else {
        for (const std::string& flag : flags) {
          if (std::none_of(now.begin(), now.end(), [&](const std::string& other) { return same(other, flag); })) {
            now.push_back(flag);
          }
        }
      }
      // An unchanged message keeps its change number (RFC 7162 section 3.2).
      if (now != before) {
        entry.modseq = static_cast<std::uint64_t>(++mailbox->second);
        entry.flags.clear();
        for (const std::string& flag : now) entry.flags += (entry.flags.empty() ? "" : " ") + flag;
        update->bind(1, entry.flags);
        update->bind(2, static_cast<std::int64_t>(entry.modseq));
        update->bind(3, id);
        update->exec();
        update->reset();
      }
      result.changed.push_back(std::move(entry));
    }
    Connection::Query advance = db_.writer->query("UPDATE mailboxes SET highestmodseq = ? WHERE id = ?");
    for (const auto& [mailbox, modseq] : highest) {
      if (modseq == start[mailbox]) continue;
      advance->bind(1, modseq);
      advance->bind(2, mailbox);
      advance->exec();
      advance->reset();
    }
    transaction.commit();
  });
  return result;
}

std::vector<sdk::MessageEntry> SqliteMailboxes::list_messages(std::string_view user, std::string_view mailbox) {
  const Database::Reader reader = db_.read();
  return guarded("list messages", [&] {
    std::vector<sdk::MessageEntry> entries;
    static const std::string sql = select_entries(
        "FROM messages m JOIN mailboxes b ON m.mailbox_id = b.id JOIN users u ON b.user_id = u.id "
        "WHERE u.address = ? AND b.name = ? ORDER BY m.uid");
    Connection::Query query = reader->query(sql);
    query->bind(1, lower_ascii(user));
    query->bind(2, std::string(mailbox));
    while (query->executeStep()) entries.push_back(entry_of(*query));
    return entries;
  });
}

std::optional<sdk::MailboxChanges> SqliteMailboxes::changes_since(std::string_view user, std::string_view mailbox,
                                                                  std::uint32_t uidvalidity, std::uint64_t modseq) {
  const Database::Reader reader = db_.read();
  return guarded("list changes", [&]() -> std::optional<sdk::MailboxChanges> {
    SQLite::Transaction snapshot(*reader);
    Connection::Query state = reader->query(
        "SELECT b.id, b.uidvalidity, b.highestmodseq, b.expunged_floor FROM mailboxes b "
        "JOIN users u ON b.user_id = u.id WHERE u.address = ? AND b.name = ?");
    state->bind(1, lower_ascii(user));
    state->bind(2, std::string(mailbox));
    // Below the floor some expunges are forgotten: only the whole list can say what is there.
    if (!state->executeStep() || state->getColumn(1).getInt64() != uidvalidity ||
        modseq < static_cast<std::uint64_t>(state->getColumn(3).getInt64())) {
      return std::nullopt;
    }
    const std::int64_t id = state->getColumn(0).getInt64();
    sdk::MailboxChanges changes;
    changes.highestmodseq = static_cast<std::uint64_t>(state->getColumn(2).getInt64());
    static const std::string sql = select_entries(
        "FROM messages m JOIN mailboxes b ON m.mailbox_id = b.id WHERE m.mailbox_id = ? AND m.modseq > ? "
        "ORDER BY m.uid");
    Connection::Query changed = reader->query(sql);
    changed->bind(1, id);
    changed->bind(2, static_cast<std::int64_t>(modseq));
    while (changed->executeStep()) changes.changed.push_back(entry_of(*changed));
    changes.expunged = expunged_after(*reader, id, modseq);
    return changes;
  });
}

std::optional<sdk::MailboxState> SqliteMailboxes::mailbox_state(std::string_view user, std::string_view mailbox) {
  const Database::Reader reader = db_.read();
  return guarded("read change number", [&]() -> std::optional<sdk::MailboxState> {
    Connection::Query query = reader->query(
        "SELECT b.uidvalidity, b.highestmodseq FROM mailboxes b JOIN users u ON b.user_id = u.id "
        "WHERE u.address = ? AND b.name = ?");
    query->bind(1, lower_ascii(user));
    query->bind(2, std::string(mailbox));
    if (!query->executeStep()) return std::nullopt;
    return sdk::MailboxState{static_cast<std::uint32_t>(query->getColumn(0).getInt64()),
                             static_cast<std::uint64_t>(query->getColumn(1).getInt64())};
  });
}

std::vector<std::uint32_t> SqliteMailboxes::expunged_since(std::string_view user, std::string_view mailbox,
                                                           std::uint64_t modseq) {
  const Database::Reader reader = db_.read();
  return guarded("list expunged", [&] {
    std::vector<std::uint32_t> uids;
    SQLite::Transaction snapshot(*reader);
    Connection::Query state = reader->query(
        "SELECT b.id, b.expunged_floor, b.uidnext FROM mailboxes b JOIN users u ON b.user_id = u.id "
        "WHERE u.address = ? AND b.name = ?");
    state->bind(1, lower_ascii(user));
    state->bind(2, std::string(mailbox));
    if (!state->executeStep()) return uids;
    const std::int64_t id = state->getColumn(0).getInt64();
    const auto floor = static_cast<std::uint64_t>(state->getColumn(1).getInt64());
    const auto uidnext = static_cast<std::uint32_t>(state->getColumn(2).getInt64());
    if (modseq < floor) {
      // Some of what went since then is forgotten: every UID below UIDNEXT that is not here now may have gone.
      // RFC 7162 lets VANISHED (EARLIER) name UIDs the client never knew; it ignores them.
      Connection::Query present = reader->query("SELECT uid FROM messages WHERE mailbox_id = ? ORDER BY uid");
      present->bind(1, id);
      std::uint32_t next = 1;
      while (present->executeStep()) {
        const auto uid = static_cast<std::uint32_t>(present->getColumn(0).getInt64());
        for (; next < uid; ++next) uids.push_back(next);
        next = uid + 1;
      }
      for (; next < uidnext; ++next) uids.push_back(next);
      return uids;
    }
    return expunged_after(*reader, id, modseq);
  });
}

std::string SqliteMailboxes::read_message(std::string_view user, std::int64_t id) {
  std::optional<std::string> content = std::move(read_messages(user, {id}).front());
  if (!content) throw sdk::StoreError(fmt::format("no message {} for {}", id, user));
  return std::move(*content);
}

std::vector<std::optional<std::string>> SqliteMailboxes::read_messages(std::string_view user,
                                                                       const std::vector<std::int64_t>& ids) {
  std::vector<std::optional<std::string>> contents(ids.size());
  std::vector<std::pair<std::size_t, std::string>> in_files;  // (index, blob hash), read after the lock
  {
    const Database::Reader reader = db_.read();
    guarded("read messages", [&] {
      // One read transaction and one prepared statement for the lot: a statement's own transaction takes and
      // drops the database's locks every time, which costs more than reading a small body.
      SQLite::Transaction snapshot(*reader);
      // The user is looked up once; each message is then found by id and checked to be in one of theirs.
      const std::optional<std::int64_t> owner = user_id(*reader, lower_ascii(user));
      if (!owner) return;
      // A message removed not long ago is read from what its removal kept (see remove_messages).
      Connection::Query query = reader->query(
          "SELECT m.blob, b.body FROM messages m JOIN mailboxes x ON m.mailbox_id = x.id "
          "JOIN blobs b ON b.hash = m.blob WHERE m.id = ?1 AND x.user_id = ?2 "
          "UNION ALL SELECT r.blob, b.body FROM removed r JOIN blobs b ON b.hash = r.blob "
          "WHERE r.id = ?1 AND r.user_id = ?2");
      for (std::size_t i = 0; i < ids.size(); ++i) {
        query->bind(1, ids[i]);
        query->bind(2, *owner);
        if (!query->executeStep()) {  // removed long ago, or not this user's: nullopt
          query->reset();
          continue;
        }
        const SQLite::Column body = query->getColumn(1);
        if (body.isNull()) {
          in_files.emplace_back(i, query->getColumn(0).getString());
        } else {
          contents[i].emplace(static_cast<const char*>(body.getBlob()), static_cast<std::size_t>(body.getBytes()));
        }
        query->reset();
      }
    });
  }
  for (auto& [index, hash] : in_files) contents[index] = db_.blobs.read(hash);
  return contents;
}

void SqliteMailboxes::bound_expunged(std::int64_t mailbox) {
  std::size_t& unchecked = unchecked_expunges_[mailbox];
  if (unchecked < std::max<std::size_t>(1, db_.expunged_kept / 4)) return;
  unchecked = 0;
  Connection::Query cutoff =
      db_.writer->query("SELECT modseq FROM expunged WHERE mailbox_id = ?1 ORDER BY modseq DESC LIMIT 1 OFFSET ?2");
  Connection::Query forget = db_.writer->query("DELETE FROM expunged WHERE mailbox_id = ? AND modseq <= ?");
  Connection::Query floor =
      db_.writer->query("UPDATE mailboxes SET expunged_floor = max(expunged_floor, ?2) WHERE id = ?1");
  cutoff->bind(1, mailbox);
  cutoff->bind(2, static_cast<std::int64_t>(2 * db_.expunged_kept));
  const bool over = cutoff->executeStep();
  cutoff->reset();
  if (!over) return;
  cutoff->bind(1, mailbox);
  cutoff->bind(2, static_cast<std::int64_t>(db_.expunged_kept));
  cutoff->executeStep();
  const std::int64_t oldest_forgotten = cutoff->getColumn(0).getInt64();
  cutoff->reset();
  forget->bind(1, mailbox);
  forget->bind(2, oldest_forgotten);
  forget->exec();
  forget->reset();
  floor->bind(1, mailbox);
  floor->bind(2, oldest_forgotten);
  floor->exec();
  floor->reset();
}

void SqliteMailboxes::remove_messages(std::string_view user, const std::vector<std::int64_t>& ids) {
  if (ids.empty()) return;
  std::lock_guard lock(db_.write_mutex);
  const std::int64_t now = std::time(nullptr);
  std::vector<std::string> unused = guarded("remove messages", [&] {
    {
      const Database::Unflushed unflushed(db_);
      SQLite::Transaction transaction = db_.write_transaction();
      const std::optional<std::int64_t> owner = user_id(*db_.writer, lower_ascii(user));
      if (!owner) return std::vector<std::string>();
      Connection::Query remove = db_.writer->query(
          "DELETE FROM messages WHERE id = ? AND mailbox_id IN (SELECT id FROM mailboxes "
          "WHERE user_id = ?) RETURNING blob, mailbox_id, uid");
      // The body stays readable by the message's id for a while (Database::removed_readable).
      Connection::Query keep =
          db_.writer->query("INSERT INTO removed (id, user_id, blob, removed) VALUES (?, ?, ?, ?)");
      // An expunge is a change of its mailbox too (CONDSTORE's HIGHESTMODSEQ moves on), remembered with its
      // UID for QRESYNC's VANISHED.
      Connection::Query bump = db_.writer->query(
          "UPDATE mailboxes SET highestmodseq = highestmodseq + 1 WHERE id = ? "
          "RETURNING highestmodseq");
      Connection::Query remember = db_.writer->query("INSERT INTO expunged (mailbox_id, uid, modseq) VALUES (?, ?, ?)");
      std::vector<std::int64_t> touched;  // mailboxes that lost messages
      for (std::int64_t id : ids) {
        remove->bind(1, id);
        remove->bind(2, *owner);
        const bool removed = remove->executeStep();
        const std::string blob = removed ? remove->getColumn(0).getString() : std::string();
        const std::int64_t mailbox = removed ? remove->getColumn(1).getInt64() : 0;
        const std::int64_t uid = removed ? remove->getColumn(2).getInt64() : 0;
        remove->reset();
        if (!removed) continue;
        keep->bind(1, id);
        keep->bind(2, *owner);
        keep->bind(3, blob);
        keep->bind(4, now);
        keep->exec();
        keep->reset();
        bump->bind(1, mailbox);
        bump->executeStep();
        const std::int64_t modseq = bump->getColumn(0).getInt64();
        bump->reset();
        remember->bind(1, mailbox);
        remember->bind(2, uid);
        remember->bind(3, modseq);
        remember->exec();
        remember->reset();
        ++unchecked_expunges_[mailbox];
        if (std::find(touched.begin(), touched.end(), mailbox) == touched.end()) touched.push_back(mailbox);
      }
      for (std::int64_t mailbox : touched) bound_expunged(mailbox);
      transaction.commit();
    }
    return release_removed(now);
  });
  for (const std::string& hash : unused) db_.blobs.remove(hash);
}

std::vector<std::string> SqliteMailboxes::release_removed(std::int64_t now) {
  Connection::Query due = db_.writer->query("SELECT 1 FROM removed WHERE removed <= ? LIMIT 1");
  due->bind(1, now - db_.removed_readable);
  if (!due->executeStep()) return {};
  // A commit that waits for the disk (the writer's default): bodies are unlinked only once nothing can bring
  // back a reference to them.
  SQLite::Transaction transaction = db_.write_transaction();
  std::vector<std::string> hashes;
  Connection::Query expired = db_.writer->query("DELETE FROM removed WHERE removed <= ? RETURNING blob");
  expired->bind(1, now - db_.removed_readable);
  while (expired->executeStep()) hashes.push_back(expired->getColumn(0).getString());
  expired->reset();
  std::vector<std::string> released = db_.release_blobs(hashes);
  transaction.commit();
  return released;
}

}  // namespace tern::store_sqlite
