// The selected state: the snapshot of the mailbox, STORE, EXPUNGE and CLOSE (FETCH: imap_fetch.cpp).
#include <algorithm>
#include <ctime>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include <fmt/ranges.h>

#include "imap_session.hpp"
#include "imap_structure.hpp"
#include "tern/sdk/header.hpp"
#include "tern/sdk/text.hpp"

namespace tern::imap {

std::optional<std::vector<std::size_t>> ImapSession::select_messages(const Value& set, bool uid) const {
  if (set.kind != Value::Kind::atom) return std::nullopt;
  const std::uint32_t largest = messages_.empty() ? 0
                                : uid             ? messages_.back().uid
                                                  : static_cast<std::uint32_t>(messages_.size());
  if (set.text == "$") {
    std::vector<std::size_t> indexes;
    for (std::size_t i = 0; i < messages_.size(); ++i) {
      if (std::binary_search(saved_.begin(), saved_.end(), messages_[i].uid)) indexes.push_back(i);
    }
    return indexes;
  }
  auto ranges = parse_sequence_set(set.text, std::max<std::uint32_t>(largest, 1));
  if (!ranges) return std::nullopt;
  std::vector<std::size_t> indexes;
  for (std::size_t i = 0; i < messages_.size(); ++i) {
    const std::uint32_t number = uid ? messages_[i].uid : static_cast<std::uint32_t>(i + 1);
    if (in_sequence_set(*ranges, number)) indexes.push_back(i);
  }
  return indexes;
}

ImapSession::Probe ImapSession::probe_mailbox() {
  Probe probe;
  sdk::MailStore& store = server_.store();
  const std::optional<sdk::MailboxState> current = store.mailboxes().mailbox_state(client_.user, mailbox_);
  // A mailbox deleted under the session (by another one) shows as emptied; one made again in its place is
  // another mailbox, whose UIDs would mean other messages.
  if (!current || current->uidvalidity != uidvalidity_) {
    probe.now = std::make_shared<const Messages>();
    probe.replaced = current.has_value();
    return probe;
  }
  probe.modseq = current->highestmodseq;
  if (probe.modseq == listed_modseq_) return probe;
  probe.now = lists_.get(store.mailboxes(), client_.user, mailbox_, uidvalidity_, probe.modseq);
  // The messages that arrived since are \\Recent here when no other session saw them first (EXAMINE only looks).
  const std::uint32_t known_uid = messages_.empty() ? 0 : messages_.back().uid;
  if (probe.now->empty() || probe.now->back().uid <= known_uid) return probe;
  probe.first_recent =
      read_only_ ? recent_claims_.watermark(store.state(), client_.user, mailbox_, uidvalidity_)
                 : recent_claims_.claim(store.state(), client_.user, mailbox_, uidvalidity_, probe.now->back().uid + 1);
  return probe;
}

void ImapSession::note_probe() {
  if (!probe_wanted_ || state_ != State::selected) return;
  try {
    probe_ = probe_mailbox();
  } catch (const std::exception&) {
    // The command's own work is done; the refresh then looks for itself.
    probe_.reset();
  }
}

sdk::Task<bool> ImapSession::refresh() {
  Probe probe;
  if (probe_) {
    probe = std::move(*probe_);
    probe_.reset();
  } else {
    const std::optional<std::string> failure = co_await server_.attempt([&] { probe = probe_mailbox(); });
    if (failure) co_return false;
  }
  refreshed_ = true;
  const std::shared_ptr<const Messages>& now = probe.now;
  if (!now) co_return true;
  // Both lists ascend by UID and UIDs are never reused: one walk finds what went and what changed.
  std::vector<std::size_t> gone;
  std::vector<std::pair<std::uint32_t, const sdk::MessageEntry*>> changed;  // (UID, as it is now)
  std::size_t j = 0;
  for (std::size_t i = 0; i < messages_.size(); ++i) {
    while (j < now->size() && (*now)[j].uid < messages_[i].uid) ++j;
    if (j == now->size() || (*now)[j].uid != messages_[i].uid) {
      gone.push_back(i);
      continue;
    }
    if ((*now)[j].flags != messages_[i].flags) changed.emplace_back(messages_[i].uid, &(*now)[j]);
    ++j;
  }
  const std::size_t kept = messages_.size() - gone.size();
  report_expunged(gone);
  // The survivors are the first `kept` of the new list, in the same order: their sequence numbers are theirs.
  std::size_t k = 0;
  for (const auto& [uid, entry] : changed) {
    while ((*now)[k].uid != uid) ++k;
    announce_flags(entry->flags);
    untagged(fmt::format("{} FETCH ({}{})", k + 1, condstore_ ? fmt::format("UID {} ", uid) : "", flags_item(*entry)));
  }
  messages_ = MessageList(now);
  listed_modseq_ = probe.modseq;
  if (messages_.size() != kept) {
    untagged(fmt::format("{} EXISTS", messages_.size()));
    take_recent(probe.first_recent);
    if (!rev2_) untagged(fmt::format("{} RECENT", recent_count()));
  }
  if (probe.replaced) {
    // RFC 3501 section 2.3.1.1: the client must learn of the new UIDVALIDITY before it trusts a UID again.
    untagged("BYE [UNAVAILABLE] The selected mailbox was deleted and made again; select it anew");
    closing_ = true;
  }
  co_return true;
}

void ImapSession::report_expunged(const std::vector<std::size_t>& indexes) {
  if (indexes.empty()) return;
  if (qresync_) {
    std::vector<std::uint32_t> uids;
    for (std::size_t index : indexes) uids.push_back(messages_[index].uid);
    untagged(fmt::format("VANISHED {}", compact_set(uids)));
  } else {
    for (auto it = indexes.rbegin(); it != indexes.rend(); ++it) untagged(fmt::format("{} EXPUNGE", *it + 1));
  }
  messages_.remove(indexes);
}

std::string ImapSession::flags_item(const sdk::MessageEntry& message) const {
  return condstore_ ? fmt::format("FLAGS ({}) MODSEQ ({})", flags_text(message), message.modseq)
                    : fmt::format("FLAGS ({})", flags_text(message));
}

std::string ImapSession::flags_text(const sdk::MessageEntry& message) const {
  if (rev2_ || !std::binary_search(recent_.begin(), recent_.end(), message.uid)) return message.flags;
  return message.flags.empty() ? "\\Recent" : message.flags + " \\Recent";
}

void ImapSession::announce_flags(std::string_view flags) {
  if (learn_keywords(flags)) tell_flags();
}

bool ImapSession::learn_keywords(std::string_view flags) {
  bool added = false;
  for (std::size_t start = 0; start < flags.size();) {
    const std::size_t end = std::min(flags.find(' ', start), flags.size());
    const std::string_view flag = flags.substr(start, end - start);
    start = end + 1;
    if (flag.empty() || flag.starts_with('\\')) continue;
    // Called for every message a FETCH FLAGS shows: compared in place, nothing allocated.
    const bool known = std::any_of(keywords_.begin(), keywords_.end(),
                                   [&](const std::string& keyword) { return sdk::same_ascii(keyword, flag); });
    if (known) continue;
    keywords_.emplace_back(flag);
    added = true;
  }
  return added;
}

void ImapSession::tell_flags() {
  const std::string keywords = keywords_.empty() ? "" : fmt::format(" {}", fmt::join(keywords_, " "));
  untagged(fmt::format("FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft{})", keywords));
  untagged(read_only_ ? "OK [PERMANENTFLAGS ()] Read-only mailbox"
                      : fmt::format(
                            "OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft{} \\*)] Flags permitted",
                            keywords));
}

void ImapSession::take_recent(std::uint32_t first) {
  for (const sdk::MessageEntry& message : messages_) {
    if (message.uid >= first && (recent_.empty() || message.uid > recent_.back())) recent_.push_back(message.uid);
  }
}

std::size_t ImapSession::recent_count() const {
  return static_cast<std::size_t>(
      std::count_if(recent_.begin(), recent_.end(), [&](std::uint32_t uid) { return messages_.contains_uid(uid); }));
}

sdk::Task<void> ImapSession::on_store(const Command& command) {
  const bool uid = command.name == "UID STORE";
  std::vector<Value> arguments = command.arguments;
  std::optional<std::uint64_t> unchanged_since;
  if (arguments.size() == 4) {
    std::optional<std::uint64_t> since = modifier(arguments[1], "UNCHANGEDSINCE");
    if (!since) {
      tagged(command, "BAD", "Syntax: STORE set [(UNCHANGEDSINCE modseq)] (+|-)FLAGS[.SILENT] (flags)");
      co_return;
    }
    unchanged_since = since;
    arguments.erase(arguments.begin() + 1);
    condstore_ = true;
  }
  if (arguments.size() != 3 || arguments[1].kind != Value::Kind::atom) {
    tagged(command, "BAD", "Syntax: STORE set (+|-)FLAGS[.SILENT] (flags)");
    co_return;
  }
  if (read_only_) {
    tagged(command, "NO", "[READ-ONLY] Mailbox is read-only");
    co_return;
  }
  std::optional<std::vector<std::size_t>> indexes = select_messages(arguments[0], uid);
  std::string item = sdk::lower_ascii(arguments[1].text);
  const bool silent = item.ends_with(".silent");
  if (silent) item.resize(item.size() - 7);
  sdk::FlagChange change = sdk::FlagChange::replace;
  if (item == "+flags") change = sdk::FlagChange::add;
  if (item == "-flags") change = sdk::FlagChange::remove;
  if (!indexes || (item != "flags" && item != "+flags" && item != "-flags")) {
    tagged(command, "BAD", "Syntax: STORE set (+|-)FLAGS[.SILENT] (flags)");
    co_return;
  }
  std::vector<std::string> flags;
  const Value& given = arguments[2];
  for (const Value& flag : given.kind == Value::Kind::list ? given.items : std::vector<Value>{given}) {
    if (flag.kind != Value::Kind::atom || sdk::lower_ascii(flag.text) == "\\recent") {
      tagged(command, "BAD", "Flags are atoms, and \\Recent cannot be stored");
      co_return;
    }
    flags.push_back(flag.text);
  }
  std::vector<std::int64_t> ids;
  for (std::size_t index : *indexes) ids.push_back(messages_[index].id);
  sdk::FlagResult result;
  sdk::MailStore& store = server_.store();
  const std::optional<std::string> failure = co_await attempt(
      [&] { result = store.mailboxes().change_flags(client_.user, ids, change, flags, unchanged_since); });
  if (failure) {
    tagged(command, "NO", "[UNAVAILABLE] Flags not stored, try again");
    co_return;
  }
  server_.mailbox_changed({client_.user});
  report_stored(command, *indexes, result, silent);
}

void ImapSession::report_stored(const Command& command, const std::vector<std::size_t>& indexes,
                                const sdk::FlagResult& result, bool silent) {
  const bool uid = command.name == "UID STORE";
  std::unordered_map<std::int64_t, const sdk::MessageEntry*> by_id;
  for (const sdk::MessageEntry& entry : result.changed) by_id.emplace(entry.id, &entry);
  const std::unordered_set<std::int64_t> refused(result.modified.begin(), result.modified.end());
  std::vector<std::uint32_t> modified;
  for (std::size_t index : indexes) {
    if (refused.contains(messages_[index].id)) {
      modified.push_back(uid ? messages_[index].uid : static_cast<std::uint32_t>(index + 1));
    }
    const auto updated = by_id.find(messages_[index].id);
    if (updated == by_id.end()) continue;
    const sdk::MessageEntry& entry = *updated->second;
    messages_.set_flags(index, entry.flags, entry.modseq);
    listed_modseq_ = 0;
    if (!silent) {
      announce_flags(entry.flags);
      // RFC 7162 section 3.1: with CONDSTORE on, a FETCH that STORE causes carries the UID and MODSEQ.
      untagged(uid || condstore_
                   ? fmt::format("{} FETCH (UID {} {})", index + 1, messages_[index].uid, flags_item(entry))
                   : fmt::format("{} FETCH ({})", index + 1, flags_item(entry)));
    }
  }
  if (!modified.empty()) {
    tagged(command, "OK",
           fmt::format("[MODIFIED {}] Conditional {} failed for some", fmt::join(modified, ","), command.name));
    return;
  }
  tagged(command, "OK", fmt::format("{} completed", command.name));
}

sdk::Task<bool> ImapSession::expunge_deleted(bool report, const std::vector<std::size_t>& only) {
  std::vector<bool> candidate(messages_.size(), only.empty());
  for (std::size_t index : only) candidate[index] = true;
  std::vector<std::int64_t> ids;
  for (std::size_t i = 0; i < messages_.size(); ++i) {
    if (candidate[i] && has_flag(messages_[i].flags, "\\Deleted")) ids.push_back(messages_[i].id);
  }
  if (ids.empty()) co_return true;
  sdk::MailStore& store = server_.store();
  const std::optional<std::string> failure =
      co_await attempt([&] { store.mailboxes().remove_messages(client_.user, ids); });
  if (failure) co_return false;
  server_.mailbox_changed({client_.user});
  std::vector<std::size_t> removed;
  for (std::size_t i = 0; i < messages_.size(); ++i) {
    if (candidate[i] && has_flag(messages_[i].flags, "\\Deleted")) removed.push_back(i);
  }
  listed_modseq_ = 0;
  if (report) {
    report_expunged(removed);
  } else {
    messages_.remove(removed);
  }
  co_return true;
}

sdk::Task<void> ImapSession::on_expunge(const Command& command) {
  if (read_only_) {
    tagged(command, "NO", "[READ-ONLY] Mailbox is read-only");
    co_return;
  }
  const bool done = co_await expunge_deleted(true);
  if (!done) {
    tagged(command, "NO", "[UNAVAILABLE] Expunge failed, try again");
    co_return;
  }
  tagged(command, "OK", "EXPUNGE completed");
}

sdk::Task<void> ImapSession::on_close(const Command& command) {
  // CLOSE removes \Deleted messages silently (RFC 3501 section 6.4.2); UNSELECT (RFC 3691) leaves them.
  if (command.name == "CLOSE" && !read_only_) {
    const bool done = co_await expunge_deleted(false);
    if (!done) {
      tagged(command, "NO", "[UNAVAILABLE] Close failed, try again");
      co_return;
    }
  }
  state_ = State::authenticated;
  messages_.clear();
  tagged(command, "OK", fmt::format("{} completed", command.name));
}

}  // namespace tern::imap
