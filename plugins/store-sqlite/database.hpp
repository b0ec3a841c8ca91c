// What the four parts of the SQLite store share: the database's two connections and their locks, the folder
// of body files, and the group commit that files received messages.
#pragma once

#include <atomic>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "blob_files.hpp"
#include "connection.hpp"
#include "group_commit.hpp"
#include "tern/sdk/store.hpp"

namespace tern::store_sqlite {

class Database {
 public:
  // Opens or creates the database at `path` (schema made or brought up to date) and the blob folder at `blobs`.
  // Bodies up to `inline_limit` octets are kept in the database, larger ones as files. Each mailbox remembers
  // at least its last `expunged_kept` expunged UIDs with their change numbers (QRESYNC). A removed message
  // stays readable by its id for `removed_readable` seconds, so that an IMAP session not yet told of an
  // expunge still serves it; its body's reference goes with the first removal after that. Throws
  // sdk::StoreError.
  Database(const std::filesystem::path& path, const std::filesystem::path& blobs, std::size_t inline_limit,
           std::size_t expunged_kept, std::int64_t removed_readable);
  ~Database();

  // Files a received message (MailStore::receive) through the group commit; returns the UID of the last copy
  // filed (APPEND files one).
  std::uint32_t file(std::string_view message, const sdk::Intake& intake);
  // Drops one reference from each blob, inside the caller's transaction on `writer`; returns the blobs nobody
  // references any more (their rows deleted), whose files the caller removes once it committed.
  std::vector<std::string> release_blobs(const std::vector<std::string>& hashes);

  // Run with write_mutex held, around a transaction whose loss at a power cut does no harm worth a flush (a
  // flag change, an expunge): its commit does not wait for the disk (WAL with synchronous NORMAL) and becomes
  // durable with the next commit that does; the database stays consistent either way. A message is never
  // acknowledged this way.
  class Unflushed {
   public:
    explicit Unflushed(Database& db);
    ~Unflushed();
    Unflushed(const Unflushed&) = delete;
    Unflushed& operator=(const Unflushed&) = delete;

   private:
    Database& db_;
  };

  // One connection for writes, used by one thread at a time: SQLite writes one transaction at a time anyway. A
  // batch rewrites a body file it is the first to reference, under this lock, so a removal that unlinked it
  // after the message found it cannot leave a message without its body.
  std::mutex write_mutex;
  std::unique_ptr<Connection> writer;
  // Begins a transaction on `writer`, with write_mutex held. IMMEDIATE: it takes SQLite's write lock at once,
  // where SQLite waits (busy timeout) while another process (the tern command line) or a reader checking the
  // WAL holds it for a moment. A deferred transaction that read first would instead fail at its first write,
  // at once, with "database is locked".
  SQLite::Transaction write_transaction() {
    return SQLite::Transaction(*writer, SQLite::TransactionBehavior::IMMEDIATE);
  }
  // Lookups read through read-only connections of their own: in WAL mode they never wait for a commit's fsync,
  // and several sessions read at once. A Reader holds one connection for its lifetime: a free one if there is
  // one, else it waits for one.
  class Reader {
   public:
    explicit Reader(Database& db);
    Connection& operator*() const { return *connection_; }
    Connection* operator->() const { return connection_; }

   private:
    std::unique_lock<std::mutex> lock_;
    Connection* connection_ = nullptr;
  };
  Reader read() { return Reader(*this); }
  BlobFiles blobs;
  const std::size_t inline_limit;
  const std::size_t expunged_kept;
  const std::int64_t removed_readable;

 private:
  // Commits a batch of received messages in one transaction; never throws (errors go to each Arrival).
  void commit_batch(const std::vector<Arrival*>& batch);

  struct ReadConnection {
    std::mutex mutex;
    std::unique_ptr<Connection> connection;
  };
  std::vector<std::unique_ptr<ReadConnection>> readers_;
  std::atomic<std::size_t> next_reader_{0};  // whom a Reader waits for when all are busy

  GroupCommit commits_;
};

}  // namespace tern::store_sqlite
