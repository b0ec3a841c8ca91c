#include "message_list.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace tern::imap {

Messages& MessageList::own() {
  if (!owned_ || !messages_) {
    messages_ = messages_ ? std::make_shared<Messages>(*messages_) : std::make_shared<Messages>();
    owned_ = true;
  }
  // Made above as a non-const Messages, and seen by this session alone.
  return const_cast<Messages&>(*messages_);
}

bool MessageList::contains_uid(std::uint32_t uid) const {
  const auto found = std::lower_bound(
      begin(), end(), uid, [](const sdk::MessageEntry& entry, std::uint32_t wanted) { return entry.uid < wanted; });
  return found != end() && found->uid == uid;
}

void MessageList::set_flags(std::size_t index, const std::string& flags, std::uint64_t modseq) {
  Messages& messages = own();
  messages[index].flags = flags;
  messages[index].modseq = modseq;
}

void MessageList::remove(const std::vector<std::size_t>& indexes) {
  if (indexes.empty()) return;
  Messages& messages = own();
  std::size_t next = 0;
  std::size_t kept = 0;
  for (std::size_t i = 0; i < messages.size(); ++i) {
    if (next < indexes.size() && indexes[next] == i) {
      ++next;
      continue;
    }
    if (kept != i) messages[kept] = std::move(messages[i]);
    ++kept;
  }
  messages.resize(kept);
}

std::shared_ptr<const Messages> MailboxLists::get(const std::string& user, const std::string& mailbox,
                                                  std::uint32_t uidvalidity, std::uint64_t modseq,
                                                  const std::function<Messages()>& load) {
  std::shared_ptr<Entry> entry;
  {
    std::lock_guard lock(mutex_);
    // Forget the mailboxes nobody has selected any more, now and then, so the map stays small.
    if (entries_.size() >= prune_at_) {
      std::erase_if(entries_, [](const auto& item) { return item.second->messages.expired(); });
      prune_at_ = std::max<std::size_t>(64, 2 * entries_.size());
    }
    std::shared_ptr<Entry>& slot = entries_[fmt::format("{}\n{}\n{}", user, mailbox, uidvalidity)];
    if (!slot) slot = std::make_shared<Entry>();
    entry = slot;
  }
  std::lock_guard loading(entry->loading);
  if (entry->modseq == modseq) {
    if (auto shared = entry->messages.lock()) return shared;
  }
  std::shared_ptr<const Messages> fresh = std::make_shared<Messages>(load());
  // A list read after its change number may be newer than it, never older: keeping the newest number seen
  // means a session never takes an older list for a newer one.
  if (modseq >= entry->modseq) {
    entry->modseq = modseq;
    entry->messages = fresh;
  }
  return fresh;
}

}  // namespace tern::imap
