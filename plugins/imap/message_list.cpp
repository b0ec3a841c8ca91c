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

namespace {

// `held` with `changes` applied; both ascend by UID, and so does the result.
Messages patched(const Messages& held, sdk::MailboxChanges& changes) {
  Messages result;
  result.reserve(held.size() + changes.changed.size());
  auto changed = changes.changed.begin();
  auto expunged = changes.expunged.begin();
  for (const sdk::MessageEntry& entry : held) {
    while (changed != changes.changed.end() && changed->uid < entry.uid) result.push_back(std::move(*changed++));
    if (changed != changes.changed.end() && changed->uid == entry.uid) {
      result.push_back(std::move(*changed++));
      continue;
    }
    while (expunged != changes.expunged.end() && *expunged < entry.uid) ++expunged;
    if (expunged == changes.expunged.end() || *expunged != entry.uid) result.push_back(entry);
  }
  std::move(changed, changes.changed.end(), std::back_inserter(result));
  return result;
}

}  // namespace

std::shared_ptr<const Messages> MailboxLists::get(const std::string& user, const std::string& mailbox,
                                                  std::uint32_t uidvalidity, std::uint64_t modseq,
                                                  const ListSource& source) {
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
  // A list may be newer than the change number asked for, never older: the caller read that number first.
  const std::shared_ptr<const Messages> held = entry->messages.lock();
  if (held && entry->modseq >= modseq) return held;
  std::shared_ptr<const Messages> fresh;
  std::uint64_t current = modseq;
  if (held) {
    if (std::optional<sdk::MailboxChanges> changes = source.changes(entry->modseq)) {
      fresh = std::make_shared<const Messages>(patched(*held, *changes));
      current = std::max(modseq, changes->highestmodseq);
    }
  }
  if (!fresh) fresh = std::make_shared<const Messages>(source.whole());
  if (current >= entry->modseq) {
    entry->modseq = current;
    entry->messages = fresh;
  }
  return fresh;
}

std::shared_ptr<const Messages> MailboxLists::get(sdk::Mailboxes& store, const std::string& user,
                                                  const std::string& mailbox, std::uint32_t uidvalidity,
                                                  std::uint64_t modseq) {
  return get(user, mailbox, uidvalidity, modseq,
             ListSource{[&] { return store.list_messages(user, mailbox); },
                        [&](std::uint64_t since) { return store.changes_since(user, mailbox, uidvalidity, since); }});
}

}  // namespace tern::imap
