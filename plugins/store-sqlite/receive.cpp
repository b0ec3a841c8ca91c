// Filing received mail: MailStore::receive, and APPEND, through the group commit. Copies for mailboxes, the
// queue entry for the remote part and the state that goes with the message are written in one transaction.
#include <fmt/format.h>

#include <SQLiteCpp/SQLiteCpp.h>

#include "database.hpp"
#include "store_queries.hpp"

namespace tern::store_sqlite {

std::uint32_t Database::file(std::string_view message, const sdk::Intake& intake) {
  if (!intake.keeps_a_copy()) {
    // No copy to keep, but the state that goes with the message still counts (a collected message discarded).
    if (intake.state.empty()) return 0;
    std::lock_guard lock(write_mutex);
    guarded("write state", [&] {
      SQLite::Transaction transaction = write_transaction();
      write_state(*writer, intake.state);
      transaction.commit();
    });
    return 0;
  }
  Arrival arrival;
  arrival.message = message;
  arrival.intake = &intake;
  // A large body is written to its file and fsynced here, on the caller's thread, in parallel with other
  // messages; a small one travels inside the database and costs no fsync of its own.
  arrival.in_file = message.size() > inline_limit;
  arrival.hash = arrival.in_file ? blobs.write(message) : sha256_hex(message);
  commits_.run(arrival, [this](const std::vector<Arrival*>& batch) { commit_batch(batch); });
  return arrival.uid;
}

namespace {

// The statements a batch runs for each message, prepared once for the whole batch.
class BatchWriter {
 public:
  BatchWriter(Connection& db, std::int64_t received)
      : db_(db),
        received_(received),
        blob_(db.query("INSERT INTO blobs (hash, size, refs, body) VALUES (?1, ?2, ?3, ?4) "
                       "ON CONFLICT (hash) DO UPDATE SET refs = refs + ?3 RETURNING refs = ?3")),
        create_(db.query("INSERT OR IGNORE INTO mailboxes (user_id, name, uidvalidity) "
                         "SELECT id, ?, ? FROM users WHERE address = ?")),
        mailbox_(
            db.query("UPDATE mailboxes SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1 WHERE name = ? AND "
                     "user_id = (SELECT id FROM users WHERE address = ?) RETURNING id, uidnext - 1, highestmodseq")),
        insert_(db.query("INSERT INTO messages (mailbox_id, uid, blob, size, received, flags, modseq) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?)")),
        queue_(db.query("INSERT INTO queue (blob, sender, ret, envid, size, created, next_attempt, smtputf8) "
                        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7)")),
        queue_recipient_(
            db.query("INSERT INTO queue_recipients (queue_id, address, notify, orcpt) VALUES (?, ?, ?, ?)")) {}

  // Counts the message's references to its body (one a mailbox copy, one for the queue entry); true when the
  // body is new to the database.
  bool reference_body(const Arrival& arrival) {
    const sdk::Intake& intake = *arrival.intake;
    blob_->bind(1, arrival.hash);
    blob_->bind(2, static_cast<std::int64_t>(arrival.message.size()));
    blob_->bind(3, static_cast<std::int64_t>(intake.filings.size() + (intake.remote.empty() ? 0 : 1)));
    if (arrival.in_file) {
      blob_->bind(4);
    } else {
      blob_->bind(4, arrival.message.data(), static_cast<int>(arrival.message.size()));
    }
    blob_->executeStep();
    const bool first = blob_->getColumn(0).getInt() != 0;
    blob_->reset();
    return first;
  }
  void reset() { blob_->reset(); }

  // One copy in a user's mailbox (made when missing); sets the arrival's UID.
  void file_copy(Arrival& arrival, const sdk::Filing& filing) {
    const std::string address = lower_ascii(filing.user);
    if (filing.mailbox != "INBOX") {
      create_->bind(1, filing.mailbox);
      create_->bind(2, received_);
      create_->bind(3, address);
      create_->exec();
      create_->reset();
    }
    mailbox_->bind(1, filing.mailbox);
    mailbox_->bind(2, address);
    if (!mailbox_->executeStep()) {
      mailbox_->reset();
      throw sdk::StoreError(fmt::format("deliver: no {} for {}", filing.mailbox, filing.user));
    }
    insert_->bind(1, mailbox_->getColumn(0).getInt64());
    arrival.uid = static_cast<std::uint32_t>(mailbox_->getColumn(1).getInt64());
    insert_->bind(2, mailbox_->getColumn(1).getInt64());
    insert_->bind(7, mailbox_->getColumn(2).getInt64());
    mailbox_->reset();
    insert_->bind(3, arrival.hash);
    insert_->bind(4, static_cast<std::int64_t>(arrival.message.size()));
    insert_->bind(5, arrival.intake->received != 0 ? arrival.intake->received : received_);
    insert_->bind(6, filing.flags);
    insert_->exec();
    insert_->reset();
  }

  // The queue entry of the message's remote recipients.
  void queue(const Arrival& arrival) {
    const sdk::Intake& intake = *arrival.intake;
    queue_->bind(1, arrival.hash);
    queue_->bind(2, intake.sender);
    queue_->bind(3, intake.ret);
    queue_->bind(4, intake.envid);
    queue_->bind(5, static_cast<std::int64_t>(arrival.message.size()));
    queue_->bind(6, received_);
    queue_->bind(7, intake.smtputf8 ? 1 : 0);
    queue_->exec();
    queue_->reset();
    const std::int64_t queue_id = db_.getLastInsertRowid();
    for (const sdk::Recipient& recipient : intake.remote) {
      queue_recipient_->bind(1, queue_id);
      queue_recipient_->bind(2, recipient.address);
      queue_recipient_->bind(3, recipient.notify);
      queue_recipient_->bind(4, recipient.orcpt);
      queue_recipient_->exec();
      queue_recipient_->reset();
    }
  }

 private:
  Connection& db_;
  std::int64_t received_;
  Connection::Query blob_, create_, mailbox_, insert_, queue_, queue_recipient_;
};

}  // namespace

void Database::commit_batch(const std::vector<Arrival*>& batch) {
  std::lock_guard lock(write_mutex);
  try {
    SQLite::Transaction transaction = write_transaction();
    BatchWriter write(*writer, now_seconds());
    for (Arrival* arrival : batch) {
      const sdk::Intake& intake = *arrival->intake;
      // Each message in a savepoint of its own: one that fails (a user removed meanwhile) fails alone.
      writer->exec("SAVEPOINT arrival");
      try {
        const bool first_reference = write.reference_body(*arrival);
        // The file may have been unlinked by a removal that committed after write() found it: write it again.
        if (arrival->in_file && first_reference) blobs.write(arrival->message);
        for (const sdk::Filing& filing : intake.filings) write.file_copy(*arrival, filing);
        if (!intake.remote.empty()) write.queue(*arrival);
        write_state(*writer, intake.state);
        writer->exec("RELEASE arrival");
      } catch (const std::exception& failure) {
        write.reset();
        writer->exec("ROLLBACK TO arrival");
        writer->exec("RELEASE arrival");
        arrival->error = store_error("deliver", failure);
      }
    }
    transaction.commit();
  } catch (const std::exception& failure) {
    for (Arrival* arrival : batch) {
      if (!arrival->error) arrival->error = store_error("deliver", failure);
    }
  }
}

}  // namespace tern::store_sqlite
