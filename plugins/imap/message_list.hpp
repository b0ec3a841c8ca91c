// The messages of a selected mailbox as sessions see them, shared: sessions on the same mailbox that agree on
// its contents hold one copy between them, so thousands of clients idling on a large INBOX cost one list.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "tern/sdk/store.hpp"

namespace tern::imap {

using Messages = std::vector<sdk::MessageEntry>;

// One session's view (sequence number = index + 1), copied on its first change while others share it.
// Not thread-safe: a session uses its own from one loop; the shared lists themselves are never changed.
class MessageList {
 public:
  MessageList() = default;
  explicit MessageList(std::shared_ptr<const Messages> messages) : messages_(std::move(messages)) {}
  MessageList(const MessageList&) = delete;
  MessageList& operator=(const MessageList&) = delete;
  MessageList(MessageList&&) = default;
  MessageList& operator=(MessageList&&) = default;

  std::size_t size() const { return messages_ ? messages_->size() : 0; }
  bool empty() const { return size() == 0; }
  const sdk::MessageEntry& operator[](std::size_t index) const { return (*messages_)[index]; }
  const sdk::MessageEntry& back() const { return messages_->back(); }
  Messages::const_iterator begin() const { return messages_ ? messages_->begin() : Messages::const_iterator(); }
  Messages::const_iterator end() const { return messages_ ? messages_->end() : Messages::const_iterator(); }

  // Whether a message with this UID is in the list (which ascends by UID).
  bool contains_uid(std::uint32_t uid) const;

  void set_flags(std::size_t index, const std::string& flags, std::uint64_t modseq);
  // Removes the messages at these indexes, which must be ascending.
  void remove(const std::vector<std::size_t>& indexes);
  void clear() {
    messages_.reset();
    owned_ = false;
  }

 private:
  Messages& own();
  std::shared_ptr<const Messages> messages_;
  // Whether messages_ is this session's own copy, made at its first change: a shared list may be handed to
  // another session at any moment, so it is never changed in place.
  bool owned_ = false;
};

// Where MailboxLists reads a mailbox's list from: whole, or what changed since a change number (nullopt when
// that cannot be said, as sdk::Mailboxes::changes_since()). Both run on the caller's thread and may throw.
struct ListSource {
  std::function<Messages()> whole;
  std::function<std::optional<sdk::MailboxChanges>(std::uint64_t since)> changes;
};

// The latest list loaded of each mailbox, by user, mailbox and change number (HIGHESTMODSEQ, which moves with
// every change), held only while some session uses it. Thread-safe: one registry serves every session.
class MailboxLists {
 public:
  // The list of `mailbox` (the one with this UIDVALIDITY: a mailbox deleted and made again is another) at
  // change number `modseq` or later: the one a session holds already, or that one brought up to date with
  // what changed since, or else the whole list read anew; once, while other sessions asking for the same wait
  // for it. So after one session's change the others read that change, not the mailbox. Called on a worker
  // thread, not a loop; throws what `source` throws.
  std::shared_ptr<const Messages> get(const std::string& user, const std::string& mailbox, std::uint32_t uidvalidity,
                                      std::uint64_t modseq, const ListSource& source);
  // get() reading from the store.
  std::shared_ptr<const Messages> get(sdk::Mailboxes& store, const std::string& user, const std::string& mailbox,
                                      std::uint32_t uidvalidity, std::uint64_t modseq);

 private:
  struct Entry {
    std::mutex loading;  // held while a list is read, so a wake-up of many sessions reads it once
    std::uint64_t modseq = 0;
    std::weak_ptr<const Messages> messages;
  };
  std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<Entry>> entries_;
  std::size_t prune_at_ = 64;  // the map's size at which entries nobody uses are dropped
};

}  // namespace tern::imap
