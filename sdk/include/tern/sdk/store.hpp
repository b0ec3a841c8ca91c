// The mail store, in four parts: the directory (domains, users, aliases), the mailboxes, the outbound queue and
// plugins' small state. A store backend is a plugin that registers a StoreFactory; the core opens the one named by
// `[store] backend`.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tern/sdk/hook.hpp"
#include "tern/sdk/version.hpp"

namespace tern::sdk {

// Thrown by a store for a failure the caller should answer with a temporary error (disk, database).
class TERN_SDK_VISIBLE StoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A StoreError for a full disk or database: nothing of the failed write remains, and it may succeed once
// space is freed. SMTP answers it 452 4.3.1 (RFC 3463: mail system full).
class TERN_SDK_VISIBLE StoreFull : public StoreError {
 public:
  using StoreError::StoreError;
};

// Thrown by the directory operations for a request that cannot succeed as given: a domain that exists
// already, a user of an unknown domain, and the like. The message is meant for the administrator.
class TERN_SDK_VISIBLE DirectoryError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct AliasEntry {
  std::string source;  // local address, or "@domain": the domain's catch-all
  std::string target;  // address it delivers to, local or not
};

// One message of a mailbox, as a POP3 or IMAP session lists it.
struct MessageEntry {
  std::int64_t id = 0;    // the store's key for read() and remove()
  std::uint32_t uid = 0;  // the mailbox's UID, ascending in delivery order, never reused
  std::uint64_t size = 0;
  std::string unique_id;      // stable across restarts and never reused: POP3 UIDL
  std::string flags;          // IMAP flags and keywords, space-separated: "\\Seen \\Flagged $Label1"
  std::int64_t received = 0;  // IMAP INTERNALDATE, seconds since the epoch
  std::uint64_t modseq = 0;   // CONDSTORE (RFC 7162): the mailbox's change number of this message's last change
  std::string content_id;     // the same for every copy of the same stored content: a key for caches
};

// What an address of a local domain expands to.
struct RecipientExpansion {
  std::vector<std::string> local_users;  // mailboxes to file into
  std::vector<std::string> forwards;     // addresses outside the local domains that aliases send it on to
  std::vector<std::string> aliases;      // the aliases it went through (Delivered-To, loop detection)
};

// A user's mailbox, as IMAP lists and selects it.
struct MailboxInfo {
  std::string name;         // "INBOX", "Sent", "Archive/2024" ('/' separates levels)
  std::string special_use;  // RFC 6154: "\\Sent", "\\Drafts", "\\Trash", "\\Junk", "\\Archive", or ""
  std::uint32_t uidvalidity = 0;
  std::uint32_t uidnext = 0;
  std::uint32_t messages = 0;
  std::uint32_t unseen = 0;
  std::uint64_t highestmodseq = 0;  // CONDSTORE: the mailbox's latest change number
};

// A user's quota (RFC 9208's STORAGE and MESSAGE resources) and what they use of it, over all their mailboxes.
struct QuotaInfo {
  std::uint64_t storage_used = 0;    // octets
  std::uint64_t storage_limit = 0;   // octets; 0: no limit
  std::uint64_t messages_used = 0;   // messages
  std::uint64_t messages_limit = 0;  // messages; 0: no limit

  bool limited() const { return storage_limit != 0 || messages_limit != 0; }
  // Whether `messages` more messages of `octets` in all stay within both limits.
  bool room_for(std::uint64_t octets, std::uint64_t messages) const {
    return (storage_limit == 0 || storage_used + octets <= storage_limit) &&
           (messages_limit == 0 || messages_used + messages <= messages_limit);
  }
  // Whether a message of `octets` could fit at all, were the user's mailboxes empty.
  bool could_hold(std::uint64_t octets) const { return storage_limit == 0 || octets <= storage_limit; }
};

// What mailbox_state() says of a mailbox.
struct MailboxState {
  std::uint32_t uidvalidity = 0;
  std::uint64_t highestmodseq = 0;
};

// What changes_since() says changed in a mailbox: applied to the mailbox's list as it stood at the change number
// asked about, it gives the list as it stands at `highestmodseq`.
struct MailboxChanges {
  std::uint64_t highestmodseq = 0;      // the change number the answer is current to
  std::vector<MessageEntry> changed;    // delivered, copied in or given new flags since, ascending by UID
  std::vector<std::uint32_t> expunged;  // removed since, ascending
};

// What change_flags() did.
struct FlagResult {
  std::vector<MessageEntry> changed;   // as they are now (every id given that still exists, but `modified`)
  std::vector<std::int64_t> modified;  // left alone: changed after `unchanged_since` (CONDSTORE STORE)
};

enum class FlagChange { add, remove, replace };

// One entry of the small durable state plugins keep in the store (see State).
struct StateChange {
  std::string space;  // whose it is and for what: "fetch:isp-pop3", "greylist"
  std::string key;
  std::string value;
  std::int64_t expires = 0;  // seconds since the epoch after which the entry is gone; 0: it stays
};

// One copy of a received message: where it is filed and with which flags.
struct Filing {
  std::string user;
  std::string mailbox = "INBOX";  // created when missing
  std::string flags;              // space-separated IMAP flags
};

// What MailStore::receive() takes in one commit: the copies to file, the envelope of the part that goes on
// the outbound queue, and the state that goes with the message.
struct Intake {
  std::vector<Filing> filings;    // local copies, each where it says
  std::string sender;             // the envelope sender, kept for the outbound side and its bounces
  std::vector<Recipient> remote;  // recipients outside the local domains, with their DSN requests
  std::string ret;                // DSN RET of the transaction
  std::string envid;              // DSN ENVID of the transaction
  bool smtputf8 = false;          // the sender asked for SMTPUTF8: the remote part may need a peer with it
  std::int64_t received = 0;      // the copies' INTERNALDATE, seconds since the epoch; 0 means now
  // State written in the same commit as the message: a collector marks a remote message seen exactly when
  // its local copy is durable, so a crash between the two can neither lose it nor fetch it twice.
  std::vector<StateChange> state;

  bool keeps_a_copy() const { return !filings.empty() || !remote.empty(); }
};

// Where one recipient of a queued message stands.
enum class DeliveryStatus {
  pending,    // to be tried at the entry's next attempt (never tried yet, or deferred: see `diagnostic`)
  held,       // waiting for its domain to be flushed (a hold route: a part-time domain, ETRN)
  released,   // held, and its domain was flushed: tried once at the next attempt, then held again if deferred
  delivered,  // the next hop took it
  failed,     // given up on: a bounce went to the sender (or nowhere, for the null sender)
};

struct QueueRecipient {
  std::string address;
  std::string notify;  // DSN NOTIFY, as Recipient
  std::string orcpt;   // DSN ORCPT, as Recipient
  DeliveryStatus status = DeliveryStatus::pending;
  std::string diagnostic;   // the last answer or reason: "550 5.1.1 <x@y>: User unknown", or "" before a try
  std::string remote_host;  // who gave that answer ("mx1.example.org[192.0.2.1]"), "" when nobody did
};

// A message waiting on the outbound queue.
struct QueueEntry {
  std::int64_t id = 0;
  std::string sender;  // "" for the null sender (a bounce)
  std::vector<QueueRecipient> recipients;
  std::uint64_t size = 0;
  std::int64_t created = 0;       // seconds since the epoch
  std::int64_t next_attempt = 0;  // seconds since the epoch
  std::uint32_t attempts = 0;     // attempts made so far
  bool held = false;              // frozen by the administrator (`tern queue hold`): not tried until released
  bool delay_notified = false;    // a "delayed" DSN went to the sender already
  bool smtputf8 = false;          // as Intake
  std::string ret;                // DSN RET of the transaction
  std::string envid;              // DSN ENVID of the transaction
};

// The store has four parts, each an interface of its own, and a backend implements all four behind one MailStore.
// Addresses are "local@domain"; the store compares them case-insensitively and returns them lower-cased.
//
// Every method blocks (disk, database) and may be called from several threads at once; callers on an event loop
// call it through ServerContext::blocking. Failures throw StoreError, or DirectoryError for a request that cannot
// succeed as given.

// Domains, users and their credentials, aliases.
class Directory {
 public:
  virtual bool is_local_domain(std::string_view domain) = 0;
  virtual void add_domain(std::string_view domain) = 0;
  virtual void remove_domain(std::string_view domain) = 0;  // refuses while users or aliases remain
  virtual std::vector<std::string> list_domains() = 0;
  virtual void add_user(std::string_view address, std::string_view password_hash) = 0;
  virtual void set_password_hash(std::string_view address, std::string_view password_hash) = 0;
  virtual void remove_user(std::string_view address) = 0;  // removes the user's mailboxes and mail too
  virtual std::vector<std::string> list_users(std::string_view domain) = 0;  // all domains when empty
  virtual std::optional<std::string> password_hash(std::string_view address) = 0;
  virtual void add_alias(std::string_view source, std::string_view target) = 0;
  virtual void remove_alias(std::string_view source, std::string_view target) = 0;
  virtual std::vector<AliasEntry> list_aliases(std::string_view domain) = 0;
  // Where mail for `address` goes, aliases expanded (a loop or a depth over 8 ends the expansion): the local
  // users, and the outside addresses aliases forward to. An address of a local domain that is neither a user
  // nor an alias goes to the domain's catch-all alias ("@example.org") when it has one. Both lists are empty
  // when nobody receives it.
  virtual RecipientExpansion expand_recipient(std::string_view address) = 0;
  // expand_recipient() for the local users only.
  std::vector<std::string> resolve_recipient(std::string_view address) { return expand_recipient(address).local_users; }

 protected:
  ~Directory() = default;
};

// Users' mailboxes: folders, messages, flags, change numbers (MODSEQ) and quotas.
class Mailboxes {
 public:
  // The user's limits and usage; DirectoryError for an unknown user. set_quota() replaces both limits.
  virtual QuotaInfo quota(std::string_view address) = 0;
  virtual void set_quota(std::string_view address, std::uint64_t storage_limit, std::uint64_t messages_limit) = 0;
  virtual std::vector<MessageEntry> list_messages(std::string_view user, std::string_view mailbox) = 0;
  // The mailbox's identity (UIDVALIDITY: a mailbox deleted and made again has another) and latest change
  // number, cheaply: the change number moves with every delivery, flag change and expunge, so a caller that
  // knows both can tell whether its list is current. nullopt when the user has no such mailbox.
  virtual std::optional<MailboxState> mailbox_state(std::string_view user, std::string_view mailbox) = 0;
  // QRESYNC (RFC 7162): the UIDs removed from the mailbox by changes numbered above `modseq`, ascending. A store
  // keeps a bounded record of expunges; asked about changes older than it remembers, it answers every UID
  // below UIDNEXT that is not in the mailbox now, a superset RFC 7162 allows.
  virtual std::vector<std::uint32_t> expunged_since(std::string_view user, std::string_view mailbox,
                                                    std::uint64_t modseq) = 0;
  // What changed in the mailbox with this UIDVALIDITY after change number `modseq`, read at one moment: what lets a
  // session that holds the list bring it up to date without reading it whole (IMAP sessions after each other's
  // changes). nullopt when the store cannot say exactly: no such mailbox, another UIDVALIDITY, or expunges older
  // than it remembers; the caller then reads list_messages(). The default always says nullopt: right for any
  // store, only slower. Arguments: user, mailbox, uidvalidity, modseq.
  virtual std::optional<MailboxChanges> changes_since(std::string_view, std::string_view, std::uint32_t,
                                                      std::uint64_t) {
    return std::nullopt;
  }
  virtual std::string read_message(std::string_view user, std::int64_t id) = 0;
  // read_message() for many, in order, as one read: what FETCH and SEARCH of a whole mailbox use. A store
  // should keep a removed message readable by its id for a while (the SQLite store: an hour), so that an IMAP
  // session not yet told of an expunge can still serve it (RFC 2180 section 4.1.3). A message gone past that
  // comes back as nullopt instead of failing the lot; other failures throw. A store that can read them in one
  // transaction should; this default reads one by one and cannot tell a removed message from a failure.
  virtual std::vector<std::optional<std::string>> read_messages(std::string_view user,
                                                                const std::vector<std::int64_t>& ids) {
    std::vector<std::optional<std::string>> contents;
    contents.reserve(ids.size());
    for (std::int64_t id : ids) contents.emplace_back(read_message(user, id));
    return contents;
  }
  // Removes messages from the user's mailboxes; ids that are gone already are skipped.
  virtual void remove_messages(std::string_view user, const std::vector<std::int64_t>& ids) = 0;
  // Every user has INBOX and the special-use mailboxes Sent, Drafts, Trash, Junk and Archive from the start.
  virtual std::vector<MailboxInfo> list_mailboxes(std::string_view user) = 0;
  // IMAP APPEND: files one message into an existing mailbox of the user, durably, and returns it (its UID
  // and, in unique_id, "<uidvalidity>.<uid>"). StoreError for a mailbox that does not exist.
  virtual MessageEntry append_message(std::string_view user, std::string_view mailbox, std::string_view message,
                                      std::string_view flags, std::int64_t received) = 0;
  // IMAP COPY: copies messages of the user into another of their mailboxes, sharing the stored bodies.
  // Returns the (source UID, new UID) pairs, in the order of `ids`, and the target's UIDVALIDITY.
  virtual std::pair<std::uint32_t, std::vector<std::pair<std::uint32_t, std::uint32_t>>> copy_messages(
      std::string_view user, const std::vector<std::int64_t>& ids, std::string_view mailbox) = 0;
  // Mailbox management; DirectoryError for a request that cannot succeed (exists, missing, INBOX, children).
  // `special_use`: "" or one RFC 6154 attribute ("\\Archive"), as IMAP's CREATE-SPECIAL-USE asks.
  virtual void create_mailbox(std::string_view user, std::string_view mailbox, std::string_view special_use) = 0;
  virtual void delete_mailbox(std::string_view user, std::string_view mailbox) = 0;
  virtual void rename_mailbox(std::string_view user, std::string_view from, std::string_view to) = 0;
  // Changes the flags of the messages with these ids (of this user) and returns them as they are now.
  // Each change takes the next change number of its mailbox (CONDSTORE). With `unchanged_since`, a message
  // whose modseq is newer is left alone and reported in `modified`.
  virtual FlagResult change_flags(std::string_view user, const std::vector<std::int64_t>& ids, FlagChange change,
                                  const std::vector<std::string>& flags,
                                  std::optional<std::uint64_t> unchanged_since) = 0;

 protected:
  ~Mailboxes() = default;
};

// The outbound queue: entries with their recipients' states, holds, and the leases of those being delivered.
class Queue {
 public:
  // Oldest first, every entry and every recipient of it.
  virtual std::vector<QueueEntry> list() = 0;
  virtual std::optional<QueueEntry> entry(std::int64_t id) = 0;
  // Hands out up to `limit` entries due at `now` (not held, next attempt passed), oldest first, leased to the
  // caller until `lease_until` in the same commit: a second deliverer (the server, and `tern queue flush` in
  // another process) is not handed them before, and an entry whose deliverer crashed is handed out again then.
  // update() ends the lease.
  virtual std::vector<QueueEntry> claim(std::int64_t now, std::int64_t lease_until, std::size_t limit) = 0;
  // The queued message, as received.
  virtual std::string read(std::int64_t id) = 0;
  // Writes back what delivery made of entries handed out by claim(): each recipient's status and diagnostic,
  // next_attempt, attempts and delay_notified, all in one commit. An entry with no recipient left pending, held
  // or released leaves the queue. Entries removed meanwhile are skipped.
  virtual void update(const std::vector<QueueEntry>& entries) = 0;
  // The administrator's tools; each returns false for an id that is not queued.
  virtual bool remove(std::int64_t id) = 0;  // no bounce
  virtual bool hold(std::int64_t id, bool held) = 0;
  // Makes entries due now: every entry not held, or with `domain`, the entries with recipients of that domain,
  // whose held recipients become released (a hold route's mail let go once, as ETRN asks). Returns how many.
  virtual std::size_t flush(std::string_view domain, std::int64_t now) = 0;

 protected:
  ~Queue() = default;
};

// Plugins' small durable state (a collector's seen UIDLs, greylist entries, users' scripts), by space and key,
// each entry with an optional expiry. An expired entry reads as absent at once, and prune() deletes it.
class State {
 public:
  virtual std::optional<std::string> get(std::string_view space, std::string_view key) = 0;
  virtual std::vector<std::pair<std::string, std::string>> list(std::string_view space) = 0;  // by key
  // Writes every change in one commit (an entry that exists is replaced).
  virtual void put(const std::vector<StateChange>& changes) = 0;
  virtual void erase(std::string_view space, std::string_view key) = 0;
  // Deletes up to `limit` entries expired at `now`; returns how many. The server calls it every few minutes.
  virtual std::size_t prune(std::int64_t now, std::size_t limit) = 0;

 protected:
  ~State() = default;
};

// A store backend: its four parts, and the one operation that spans them.
class MailStore {
 public:
  virtual ~MailStore() = default;
  virtual Directory& directory() = 0;
  virtual Mailboxes& mailboxes() = 0;
  virtual Queue& queue() = 0;
  virtual State& state() = 0;

  // Takes a received message in one durable step: a copy filed for each filing (into its mailbox, made when
  // missing), the remote part put on the outbound queue, and the Intake's state written. When it returns, all
  // of it is on disk (body and folder fsynced, database committed) or none of it is. One stored copy is shared
  // by every mailbox and the queue. With no copy to keep, only the Intake's state is written.
  virtual void receive(std::string_view message, const Intake& intake) = 0;
};

// Opens a store. Called once, at start-up, on the main thread.
class StoreFactory {
 public:
  virtual ~StoreFactory() = default;
  // data_dir: the server's data folder, created already; the store keeps its files under it unless its
  // own configuration says otherwise.
  virtual std::unique_ptr<MailStore> open(const std::filesystem::path& data_dir) const = 0;
};

}  // namespace tern::sdk
