// The mail side of the SQLite store: durable intake with group commit (which also queues), mailboxes, flags.
#include <fmt/format.h>

#include <SQLiteCpp/SQLiteCpp.h>
#include <algorithm>
#include <sstream>
#include <unordered_map>

#include "sqlite_store.hpp"
#include "store_queries.hpp"

namespace tern::store_sqlite {

void SqliteStore::receive(std::string_view message, const sdk::Intake& intake) {
  file(message, intake);
}

std::uint32_t SqliteStore::file(std::string_view message, const sdk::Intake& intake) {
  if (intake.local_users.empty() && intake.filings.empty() && intake.remote.empty()) {
    // No copy to keep, but the state that goes with the message still counts (a collected message discarded).
    if (!intake.state.empty()) state_put(intake.state);
    return 0;
  }
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

sdk::MessageEntry SqliteStore::append_message(std::string_view user, std::string_view mailbox, std::string_view message,
                                              std::string_view flags, std::int64_t received) {
  std::optional<std::pair<std::int64_t, std::int64_t>> target;
  {
    std::lock_guard lock(read_mutex_);
    target = guarded("find mailbox", [&] { return find_mailbox(*reader_, user, mailbox); });
  }
  if (!target) throw sdk::StoreError(fmt::format("no mailbox {}", mailbox));
  sdk::Intake intake;
  intake.local_users = {lower_ascii(user)};
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
    SQLite::Statement next(*db_,
                           "UPDATE mailboxes SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1 "
                           "WHERE id = ? RETURNING uidnext - 1, highestmodseq");
    SQLite::Statement insert(*db_,
                             "INSERT INTO messages (mailbox_id, uid, blob, size, received, flags, modseq) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?)");
    SQLite::Statement reference(*db_, "UPDATE blobs SET refs = refs + 1 WHERE hash = ?");
    for (std::int64_t id : ids) {
      source.bind(1, id);
      source.bind(2, lower_ascii(user));
      if (!source.executeStep()) {
        source.reset();
        continue;
      }
      next.bind(1, target->first);
      next.executeStep();
      const auto uid = static_cast<std::uint32_t>(next.getColumn(0).getInt64());
      insert.bind(7, next.getColumn(1).getInt64());
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

void SqliteStore::create_mailbox(std::string_view user, std::string_view mailbox, std::string_view special_use) {
  std::lock_guard lock(mutex_);
  guarded("create mailbox", [&] {
    auto id = user_id(*db_, lower_ascii(user));
    if (!id) throw sdk::DirectoryError(fmt::format("user {} does not exist", user));
    if (find_mailbox(*db_, user, mailbox)) throw sdk::DirectoryError(fmt::format("{} exists already", mailbox));
    SQLite::Statement insert(*db_,
                             "INSERT INTO mailboxes (user_id, name, uidvalidity, special_use) VALUES (?, ?, ?, ?)");
    insert.bind(1, *id);
    insert.bind(2, std::string(mailbox));
    insert.bind(3, next_uidvalidity(*db_));
    insert.bind(4, std::string(special_use));
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
    children.bind(1, lower_ascii(user));
    children.bind(2, static_cast<std::int64_t>(prefix.size()));
    children.bind(3, prefix);
    children.executeStep();
    if (children.getColumn(0).getInt64() > 0) throw sdk::DirectoryError(fmt::format("{} has children", mailbox));
    SQLite::Transaction transaction(*db_);
    std::vector<std::string> hashes;
    SQLite::Statement held(*db_, "SELECT blob FROM messages WHERE mailbox_id = ?");
    held.bind(1, target->first);
    while (held.executeStep()) hashes.push_back(held.getColumn(0).getString());
    // The messages go first, while their mailbox still says whose usage they count in.
    SQLite::Statement messages(*db_, "DELETE FROM messages WHERE mailbox_id = ?");
    messages.bind(1, target->first);
    messages.exec();
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
    rename.bind(1, lower_ascii(user));
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
    SQLite::Statement mailbox(
        *db_,
        "UPDATE mailboxes SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1 WHERE name = ? AND "
        "user_id = (SELECT id FROM users WHERE address = ?) RETURNING id, uidnext - 1, highestmodseq");
    SQLite::Statement insert(*db_,
                             "INSERT INTO messages (mailbox_id, uid, blob, size, received, flags, modseq) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?)");
    SQLite::Statement queue(*db_,
                            "INSERT INTO queue (blob, sender, ret, envid, size, created, next_attempt, smtputf8) "
                            "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7)");
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
        blob.bind(3, static_cast<std::int64_t>(intake.local_users.size() + intake.filings.size() +
                                               (intake.remote.empty() ? 0 : 1)));
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
        const auto file_copy = [&](const std::string& user, const std::string& mailbox_name, const std::string& flags) {
          const std::string address = lower_ascii(user);
          if (mailbox_name != "INBOX") {
            create.bind(1, mailbox_name);
            create.bind(2, received);
            create.bind(3, address);
            create.exec();
            create.reset();
          }
          mailbox.bind(1, mailbox_name);
          mailbox.bind(2, address);
          const bool found = mailbox.executeStep();
          if (!found) {
            mailbox.reset();
            throw sdk::StoreError(fmt::format("deliver: no {} for {}", mailbox_name, user));
          }
          insert.bind(1, mailbox.getColumn(0).getInt64());
          delivery->uid = static_cast<std::uint32_t>(mailbox.getColumn(1).getInt64());
          insert.bind(2, mailbox.getColumn(1).getInt64());
          insert.bind(7, mailbox.getColumn(2).getInt64());
          mailbox.reset();
          insert.bind(3, delivery->hash);
          insert.bind(4, static_cast<std::int64_t>(delivery->message.size()));
          insert.bind(5, intake.received != 0 ? intake.received : received);
          insert.bind(6, flags);
          insert.exec();
          insert.reset();
        };
        for (const std::string& user : intake.local_users) file_copy(user, intake.mailbox, intake.flags);
        for (const sdk::Filing& filing : intake.filings) file_copy(filing.user, filing.mailbox, filing.flags);
        if (!intake.remote.empty()) {
          queue.bind(1, delivery->hash);
          queue.bind(2, intake.sender);
          queue.bind(3, intake.ret);
          queue.bind(4, intake.envid);
          queue.bind(5, static_cast<std::int64_t>(delivery->message.size()));
          queue.bind(6, received);
          queue.bind(7, intake.smtputf8 ? 1 : 0);
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
        write_state(*db_, intake.state);
        db_->exec("RELEASE delivery");
      } catch (const std::exception& failure) {
        blob.reset();
        db_->exec("ROLLBACK TO delivery");
        db_->exec("RELEASE delivery");
        delivery->error = store_error("deliver", failure);
      }
    }
    transaction.commit();
  } catch (const std::exception& failure) {
    for (Delivery* delivery : batch) {
      if (!delivery->error) delivery->error = store_error("deliver", failure);
    }
  }
}

std::vector<sdk::MailboxInfo> SqliteStore::list_mailboxes(std::string_view user) {
  std::lock_guard lock(read_mutex_);
  return guarded("list mailboxes", [&] {
    std::vector<sdk::MailboxInfo> mailboxes;
    SQLite::Statement query(
        *reader_,
        "SELECT b.name, b.special_use, b.uidvalidity, b.uidnext, count(m.id), b.highestmodseq, "
        "count(m.id) - count(CASE WHEN ' ' || m.flags || ' ' LIKE '% \\Seen %' THEN 1 END) "
        "FROM mailboxes b JOIN users u ON b.user_id = u.id LEFT JOIN messages m ON m.mailbox_id = b.id "
        "WHERE u.address = ? GROUP BY b.id ORDER BY b.name = 'INBOX' DESC, b.name");
    query.bind(1, lower_ascii(user));
    while (query.executeStep()) {
      mailboxes.push_back({query.getColumn(0).getString(), query.getColumn(1).getString(),
                           static_cast<std::uint32_t>(query.getColumn(2).getInt64()),
                           static_cast<std::uint32_t>(query.getColumn(3).getInt64()),
                           static_cast<std::uint32_t>(query.getColumn(4).getInt64()),
                           static_cast<std::uint32_t>(query.getColumn(6).getInt64()),
                           static_cast<std::uint64_t>(query.getColumn(5).getInt64())});
    }
    return mailboxes;
  });
}

sdk::FlagResult SqliteStore::change_flags(std::string_view user, const std::vector<std::int64_t>& ids,
                                          sdk::FlagChange change, const std::vector<std::string>& flags,
                                          std::optional<std::uint64_t> unchanged_since) {
  sdk::FlagResult result;
  std::lock_guard lock(mutex_);
  guarded("change flags", [&] {
    SQLite::Transaction transaction(*db_);
    // The user's mailboxes and their change numbers, advanced here and written back once at the end.
    std::unordered_map<std::int64_t, std::int64_t> highest;
    SQLite::Statement mailboxes(*db_,
                                "SELECT b.id, b.highestmodseq FROM mailboxes b JOIN users u ON b.user_id = u.id "
                                "WHERE u.address = ?");
    mailboxes.bind(1, lower_ascii(user));
    while (mailboxes.executeStep()) highest[mailboxes.getColumn(0).getInt64()] = mailboxes.getColumn(1).getInt64();
    std::unordered_map<std::int64_t, std::int64_t> start = highest;
    SQLite::Statement current(*db_,
                              "SELECT id, uid, size, flags, received, modseq, blob, mailbox_id FROM messages "
                              "WHERE id = ?");
    SQLite::Statement update(*db_, "UPDATE messages SET flags = ?, modseq = ? WHERE id = ?");
    const auto same = [](const std::string& a, const std::string& b) { return lower_ascii(a) == lower_ascii(b); };
    for (std::int64_t id : ids) {
      current.bind(1, id);
      const bool exists = current.executeStep();
      const auto mailbox = exists ? highest.find(current.getColumn(7).getInt64()) : highest.end();
      if (mailbox == highest.end()) {  // gone, or another user's
        current.reset();
        continue;
      }
      sdk::MessageEntry entry;
      entry.id = id;
      entry.uid = static_cast<std::uint32_t>(current.getColumn(1).getInt64());
      entry.size = static_cast<std::uint64_t>(current.getColumn(2).getInt64());
      entry.flags = current.getColumn(3).getString();
      entry.received = current.getColumn(4).getInt64();
      entry.modseq = static_cast<std::uint64_t>(current.getColumn(5).getInt64());
      entry.content_id = current.getColumn(6).getString();
      current.reset();
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
        update.bind(1, entry.flags);
        update.bind(2, static_cast<std::int64_t>(entry.modseq));
        update.bind(3, id);
        update.exec();
        update.reset();
      }
      result.changed.push_back(std::move(entry));
    }
    SQLite::Statement advance(*db_, "UPDATE mailboxes SET highestmodseq = ? WHERE id = ?");
    for (const auto& [mailbox, modseq] : highest) {
      if (modseq == start[mailbox]) continue;
      advance.bind(1, modseq);
      advance.bind(2, mailbox);
      advance.exec();
      advance.reset();
    }
    transaction.commit();
  });
  return result;
}

std::vector<sdk::MessageEntry> SqliteStore::list_messages(std::string_view user, std::string_view mailbox) {
  std::lock_guard lock(read_mutex_);
  return guarded("list messages", [&] {
    std::vector<sdk::MessageEntry> entries;
    SQLite::Statement query(
        *reader_,
        "SELECT m.id, m.uid, m.size, b.uidvalidity, m.flags, m.received, m.modseq, m.blob FROM messages m "
        "JOIN mailboxes b ON m.mailbox_id = b.id JOIN users u ON b.user_id = u.id "
        "WHERE u.address = ? AND b.name = ? ORDER BY m.uid");
    query.bind(1, lower_ascii(user));
    query.bind(2, std::string(mailbox));
    while (query.executeStep()) {
      sdk::MessageEntry entry;
      entry.id = query.getColumn(0).getInt64();
      entry.uid = static_cast<std::uint32_t>(query.getColumn(1).getInt64());
      entry.size = static_cast<std::uint64_t>(query.getColumn(2).getInt64());
      entry.unique_id = fmt::format("{}.{}", query.getColumn(3).getInt64(), entry.uid);
      entry.flags = query.getColumn(4).getString();
      entry.received = query.getColumn(5).getInt64();
      entry.modseq = static_cast<std::uint64_t>(query.getColumn(6).getInt64());
      entry.content_id = query.getColumn(7).getString();
      entries.push_back(std::move(entry));
    }
    return entries;
  });
}

std::optional<sdk::MailboxState> SqliteStore::mailbox_state(std::string_view user, std::string_view mailbox) {
  std::lock_guard lock(read_mutex_);
  return guarded("read change number", [&]() -> std::optional<sdk::MailboxState> {
    SQLite::Statement query(*reader_,
                            "SELECT b.uidvalidity, b.highestmodseq FROM mailboxes b JOIN users u ON b.user_id = u.id "
                            "WHERE u.address = ? AND b.name = ?");
    query.bind(1, lower_ascii(user));
    query.bind(2, std::string(mailbox));
    if (!query.executeStep()) return std::nullopt;
    return sdk::MailboxState{static_cast<std::uint32_t>(query.getColumn(0).getInt64()),
                             static_cast<std::uint64_t>(query.getColumn(1).getInt64())};
  });
}

std::vector<std::uint32_t> SqliteStore::expunged_since(std::string_view user, std::string_view mailbox,
                                                       std::uint64_t modseq) {
  std::lock_guard lock(read_mutex_);
  return guarded("list expunged", [&] {
    std::vector<std::uint32_t> uids;
    SQLite::Transaction snapshot(*reader_);
    SQLite::Statement state(
        *reader_,
        "SELECT b.id, b.expunged_floor, b.uidnext FROM mailboxes b JOIN users u ON b.user_id = u.id "
        "WHERE u.address = ? AND b.name = ?");
    state.bind(1, lower_ascii(user));
    state.bind(2, std::string(mailbox));
    if (!state.executeStep()) return uids;
    const std::int64_t id = state.getColumn(0).getInt64();
    const auto floor = static_cast<std::uint64_t>(state.getColumn(1).getInt64());
    const auto uidnext = static_cast<std::uint32_t>(state.getColumn(2).getInt64());
    if (modseq < floor) {
      // Some of what went since then is forgotten: every UID below UIDNEXT that is not here now may have gone.
      // RFC 7162 lets VANISHED (EARLIER) name UIDs the client never knew; it ignores them.
      SQLite::Statement present(*reader_, "SELECT uid FROM messages WHERE mailbox_id = ? ORDER BY uid");
      present.bind(1, id);
      std::uint32_t next = 1;
      while (present.executeStep()) {
        const auto uid = static_cast<std::uint32_t>(present.getColumn(0).getInt64());
        for (; next < uid; ++next) uids.push_back(next);
        next = uid + 1;
      }
      for (; next < uidnext; ++next) uids.push_back(next);
      return uids;
    }
    SQLite::Statement query(*reader_, "SELECT uid FROM expunged WHERE mailbox_id = ? AND modseq > ? ORDER BY uid");
    query.bind(1, id);
    query.bind(2, static_cast<std::int64_t>(modseq));
    while (query.executeStep()) uids.push_back(static_cast<std::uint32_t>(query.getColumn(0).getInt64()));
    return uids;
  });
}

std::string SqliteStore::read_message(std::string_view user, std::int64_t id) {
  std::optional<std::string> content = std::move(read_messages(user, {id}).front());
  if (!content) throw sdk::StoreError(fmt::format("no message {} for {}", id, user));
  return std::move(*content);
}

std::vector<std::optional<std::string>> SqliteStore::read_messages(std::string_view user,
                                                                   const std::vector<std::int64_t>& ids) {
  std::vector<std::optional<std::string>> contents(ids.size());
  std::vector<std::pair<std::size_t, std::string>> in_files;  // (index, blob hash), read after the lock
  {
    std::lock_guard lock(read_mutex_);
    guarded("read messages", [&] {
      // One read transaction and one prepared statement for the lot: a statement's own transaction takes and
      // drops the database's locks every time, which costs more than reading a small body.
      SQLite::Transaction snapshot(*reader_);
      // The user is looked up once; each message is then found by id and checked to be in one of theirs.
      const std::optional<std::int64_t> owner = user_id(*reader_, lower_ascii(user));
      if (!owner) return;
      SQLite::Statement query(*reader_,
                              "SELECT m.blob, b.body FROM messages m JOIN mailboxes x ON m.mailbox_id = x.id "
                              "JOIN blobs b ON b.hash = m.blob WHERE m.id = ? AND x.user_id = ?");
      for (std::size_t i = 0; i < ids.size(); ++i) {
        query.bind(1, ids[i]);
        query.bind(2, *owner);
        if (!query.executeStep()) {  // removed meanwhile, or not this user's: nullopt
          query.reset();
          continue;
        }
        const SQLite::Column body = query.getColumn(1);
        if (body.isNull()) {
          in_files.emplace_back(i, query.getColumn(0).getString());
        } else {
          contents[i].emplace(static_cast<const char*>(body.getBlob()), static_cast<std::size_t>(body.getBytes()));
        }
        query.reset();
      }
    });
  }
  for (auto& [index, hash] : in_files) contents[index] = blobs_.read(hash);
  return contents;
}

void SqliteStore::remove_messages(std::string_view user, const std::vector<std::int64_t>& ids) {
  if (ids.empty()) return;
  std::lock_guard lock(mutex_);
  std::vector<std::string> unused = guarded("remove messages", [&] {
    SQLite::Transaction transaction(*db_);
    std::vector<std::string> hashes;
    SQLite::Statement remove(*db_,
                             "DELETE FROM messages WHERE id = ? AND mailbox_id IN (SELECT b.id FROM mailboxes b "
                             "JOIN users u ON b.user_id = u.id WHERE u.address = ?) RETURNING blob, mailbox_id, uid");
    // An expunge is a change of its mailbox too (CONDSTORE's HIGHESTMODSEQ moves on), remembered with its UID
    // for QRESYNC's VANISHED.
    SQLite::Statement bump(*db_,
                           "UPDATE mailboxes SET highestmodseq = highestmodseq + 1 WHERE id = ? "
                           "RETURNING highestmodseq");
    SQLite::Statement remember(*db_, "INSERT INTO expunged (mailbox_id, uid, modseq) VALUES (?, ?, ?)");
    std::vector<std::int64_t> touched;  // mailboxes that lost messages
    for (std::int64_t id : ids) {
      remove.bind(1, id);
      remove.bind(2, lower_ascii(user));
      std::vector<std::pair<std::int64_t, std::int64_t>> removed;  // (mailbox, uid)
      while (remove.executeStep()) {
        hashes.push_back(remove.getColumn(0).getString());
        removed.emplace_back(remove.getColumn(1).getInt64(), remove.getColumn(2).getInt64());
      }
      remove.reset();
      for (const auto& [mailbox, uid] : removed) {
        bump.bind(1, mailbox);
        bump.executeStep();
        const std::int64_t modseq = bump.getColumn(0).getInt64();
        bump.reset();
        remember.bind(1, mailbox);
        remember.bind(2, uid);
        remember.bind(3, modseq);
        remember.exec();
        remember.reset();
        if (std::find(touched.begin(), touched.end(), mailbox) == touched.end()) touched.push_back(mailbox);
      }
    }
    // The record of expunges is bounded: past twice expunged_kept_ rows a mailbox keeps its newest
    // expunged_kept_, and remembers up to which change number it forgot (see expunged_since()).
    SQLite::Statement cutoff(
        *db_, "SELECT modseq FROM expunged WHERE mailbox_id = ?1 ORDER BY modseq DESC LIMIT 1 OFFSET ?2");
    SQLite::Statement forget(*db_, "DELETE FROM expunged WHERE mailbox_id = ? AND modseq <= ?");
    SQLite::Statement floor(*db_, "UPDATE mailboxes SET expunged_floor = max(expunged_floor, ?2) WHERE id = ?1");
    for (std::int64_t mailbox : touched) {
      cutoff.bind(1, mailbox);
      cutoff.bind(2, static_cast<std::int64_t>(2 * expunged_kept_));
      const bool over = cutoff.executeStep();
      cutoff.reset();
      if (!over) continue;
      cutoff.bind(1, mailbox);
      cutoff.bind(2, static_cast<std::int64_t>(expunged_kept_));
      cutoff.executeStep();
      const std::int64_t oldest_forgotten = cutoff.getColumn(0).getInt64();
      cutoff.reset();
      forget.bind(1, mailbox);
      forget.bind(2, oldest_forgotten);
      forget.exec();
      forget.reset();
      floor.bind(1, mailbox);
      floor.bind(2, oldest_forgotten);
      floor.exec();
      floor.reset();
    }
    std::vector<std::string> released = release_blobs(hashes);
    transaction.commit();
    return released;
  });
  for (const std::string& hash : unused) blobs_.remove(hash);
}

}  // namespace tern::store_sqlite
