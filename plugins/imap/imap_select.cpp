// SELECT and EXAMINE (RFC 3501 section 6.3.1), with CONDSTORE and QRESYNC's parameters (RFC 7162): the mailbox's
// snapshot taken, what the client must know of it told, and with QRESYNC what changed since the client last looked.
#include <algorithm>

#include "imap_session.hpp"

namespace tern::imap {

std::optional<ImapSession::Resync> ImapSession::parse_resync(const Value& list) {
  const auto number = [](const Value& value) -> std::optional<std::uint64_t> {
    if (value.kind != Value::Kind::atom || value.text.empty() || value.text.size() > 19 ||
        !std::all_of(value.text.begin(), value.text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return std::nullopt;
    }
    return std::strtoull(value.text.c_str(), nullptr, 10);
  };
  if (list.kind != Value::Kind::list || list.items.size() < 2 || list.items.size() > 4) return std::nullopt;
  const std::optional<std::uint64_t> uidvalidity = number(list.items[0]);
  const std::optional<std::uint64_t> modseq = number(list.items[1]);
  if (!uidvalidity || !modseq || *uidvalidity == 0 || *uidvalidity > 0xffffffffu || *modseq == 0) return std::nullopt;
  Resync resync{static_cast<std::uint32_t>(*uidvalidity), *modseq, std::nullopt};
  if (list.items.size() >= 3) {
    if (list.items[2].kind != Value::Kind::atom) return std::nullopt;
    resync.known = parse_sequence_set(list.items[2].text, 0xffffffffu);
    if (!resync.known) return std::nullopt;
  }
  if (list.items.size() == 4 && list.items[3].kind != Value::Kind::list) return std::nullopt;
  return resync;
}

sdk::Task<void> ImapSession::on_select(const Command& command) {
  const bool parameters = command.arguments.size() == 2 && command.arguments[1].kind == Value::Kind::list;
  const std::optional<std::string> selected =
      command.arguments.empty() ? std::nullopt : mailbox_argument(command.arguments[0]);
  if ((command.arguments.size() != 1 && !parameters) || !command.arguments[0].is_astring() || !selected) {
    tagged(command, "BAD", fmt::format("Syntax: {} mailbox [(CONDSTORE)]", command.name));
    co_return;
  }
  std::optional<Resync> resync;
  if (parameters && !select_parameters(command, resync)) co_return;
  // Selecting closes the mailbox selected before, even when the new one fails (RFC 3501 section 6.3.1); with
  // QRESYNC the client is told where the old mailbox's news ends (RFC 7162 section 3.2.11).
  if (state_ == State::selected && (qresync_ || rev2_)) untagged("OK [CLOSED] Previous mailbox closed");
  state_ = State::authenticated;
  messages_.clear();
  saved_.clear();
  keywords_.clear();
  recent_.clear();
  const std::string& name = *selected;
  std::vector<sdk::MailboxInfo> mailboxes;
  std::shared_ptr<const Messages> messages;
  std::vector<std::uint32_t> vanished;
  std::uint32_t first_recent = 0xffffffffu;
  std::uint32_t uidnext = 0;
  const bool examine = command.name == "EXAMINE";
  sdk::MailStore& store = server_.store();
  const std::optional<std::string> failure = co_await attempt([&] {
    mailboxes = store.mailboxes().list_mailboxes(client_.user);
    auto found = std::find_if(mailboxes.begin(), mailboxes.end(),
                              [&](const sdk::MailboxInfo& mailbox) { return mailbox.name == name; });
    if (found == mailboxes.end()) return;
    messages = lists_.get(store.mailboxes(), client_.user, name, found->uidvalidity, found->highestmodseq);
    if (resync && resync->uidvalidity == found->uidvalidity) {
      vanished = store.mailboxes().expunged_since(client_.user, name, resync->modseq);
    }
    // The list is read after the mailbox: a message that came between is in it, and UIDNEXT is above it.
    uidnext = std::max(found->uidnext, messages->empty() ? 0 : messages->back().uid + 1);
    // SELECT takes the messages no session has seen yet as this one's \\Recent; EXAMINE only looks.
    first_recent = examine ? recent_claims_.watermark(store.state(), client_.user, name, found->uidvalidity)
                           : recent_claims_.claim(store.state(), client_.user, name, found->uidvalidity, uidnext);
  });
  auto found = std::find_if(mailboxes.begin(), mailboxes.end(),
                            [&](const sdk::MailboxInfo& mailbox) { return mailbox.name == name; });
  if (failure || found == mailboxes.end() || !messages) {
    tagged(command, "NO", "[NONEXISTENT] No such mailbox");
    co_return;
  }
  mailbox_ = name;
  read_only_ = examine;
  uidvalidity_ = found->uidvalidity;
  messages_ = MessageList(messages);
  listed_modseq_ = found->highestmodseq;
  state_ = State::selected;
  take_recent(first_recent);
  // FLAGS lists the keywords the messages carry now; one set later is told before a FETCH shows it.
  for (const sdk::MessageEntry& message : messages_) learn_keywords(message.flags);
  tell_flags();
  untagged(fmt::format("{} EXISTS", messages_.size()));
  // IMAP4rev2 drops RECENT and wants the mailbox's name as the server spells it (RFC 9051 section 6.3.2).
  if (!rev2_) untagged(fmt::format("{} RECENT", recent_count()));
  if (rev2_) untagged(fmt::format("LIST () \"/\" {}", mailbox_text(mailbox_)));
  untagged(fmt::format("OK [UIDVALIDITY {}] UIDs valid", uidvalidity_));
  untagged(fmt::format("OK [UIDNEXT {}] Predicted next UID", uidnext));
  untagged(fmt::format("OK [HIGHESTMODSEQ {}] Highest", found->highestmodseq));
  if (resync && resync->uidvalidity == uidvalidity_) report_resync(*resync, std::move(vanished));
  tagged(command, "OK", fmt::format("[{}] {} completed", read_only_ ? "READ-ONLY" : "READ-WRITE", command.name));
}

bool ImapSession::select_parameters(const Command& command, std::optional<Resync>& resync) {
  // QRESYNC (RFC 7162 section 3.2.5): (QRESYNC (uidvalidity modseq [known-uids])); the sequence match data
  // that may follow is a hint this server does without.
  const std::vector<Value>& items = command.arguments[1].items;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (items[i].is_atom("CONDSTORE")) {
      condstore_ = true;
      continue;
    }
    if (items[i].is_atom("QRESYNC") && i + 1 < items.size()) {
      if (!qresync_) {
        tagged(command, "BAD", "QRESYNC is not enabled");
        return false;
      }
      resync = parse_resync(items[++i]);
      if (!resync) {
        tagged(command, "BAD", "Syntax: QRESYNC (uidvalidity modseq [known-uids [(sequences uids)]])");
        return false;
      }
      continue;
    }
    tagged(command, "BAD", fmt::format("Unknown {} parameter {}", command.name, items[i].text));
    return false;
  }
  return true;
}

void ImapSession::report_resync(const Resync& resync, std::vector<std::uint32_t> vanished) {
  // What changed since the client's last look: the UIDs it knew that went, then the messages changed since.
  // Only UIDs the client may know of, and none the list still holds: an expunge that came between the two
  // reads is told by the next refresh.
  std::erase_if(vanished, [&](std::uint32_t uid) {
    return (resync.known && !in_sequence_set(*resync.known, uid)) || messages_.contains_uid(uid);
  });
  if (!vanished.empty()) untagged(fmt::format("VANISHED (EARLIER) {}", compact_set(vanished)));
  for (std::size_t i = 0; i < messages_.size(); ++i) {
    const sdk::MessageEntry& message = messages_[i];
    if (message.modseq <= resync.modseq) continue;
    if (resync.known && !in_sequence_set(*resync.known, message.uid)) continue;
    announce_flags(message.flags);
    untagged(fmt::format("{} FETCH (UID {} {})", i + 1, message.uid, flags_item(message)));
  }
}

}  // namespace tern::imap
