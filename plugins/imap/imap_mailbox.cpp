// The selected state: the snapshot of the mailbox, FETCH, STORE, SEARCH, EXPUNGE and CLOSE.
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
namespace {

std::vector<std::string> split_flags(std::string_view flags) {
  std::vector<std::string> result;
  std::istringstream words{std::string(flags)};
  for (std::string word; words >> word;) result.push_back(word);
  return result;
}

std::string internal_date(std::int64_t seconds) {
  std::time_t time = seconds;
  std::tm utc{};
  ::gmtime_r(&time, &utc);
  char buffer[40];
  std::strftime(buffer, sizeof buffer, "\"%d-%b-%Y %H:%M:%S +0000\"", &utc);
  return buffer;
}

// The header fields named (or, with `exclude`, not named) in `names`, continuation lines kept, then a blank line.
std::string header_fields(std::string_view header, const std::vector<std::string>& names, bool exclude) {
  std::string out;
  sdk::visit_header_fields(header, [&](const sdk::HeaderField& field) {
    const bool named = std::any_of(names.begin(), names.end(),
                                   [&field](const std::string& wanted) { return sdk::same_ascii(wanted, field.name); });
    if (named != exclude) out.append(field.text);
    return false;
  });
  return out + "\r\n";
}

struct BodySection {
  std::string name;  // as the response names it: "BODY[1.HEADER]", "RFC822", ...
  std::string part;  // the MIME part number: "", "1", "1.2"
  std::string text;  // "", "HEADER", "TEXT", "MIME", "HEADER.FIELDS", "HEADER.FIELDS.NOT"
  std::vector<std::string> fields;
  std::optional<std::pair<std::uint64_t, std::uint64_t>> partial;
  bool peek = false;
  bool binary = false;     // BINARY[part] (RFC 3516): the part's body with its transfer encoding undone
  bool size_only = false;  // BINARY.SIZE[part]: the size of that
};

bool part_number(std::string_view text) {
  if (text.empty() || text.front() == '.' || text.back() == '.') return false;
  return std::all_of(text.begin(), text.end(), [](char c) { return (c >= '0' && c <= '9') || c == '.'; }) &&
         text.find("..") == std::string_view::npos && text.find(".0") == std::string_view::npos && text.front() != '0';
}

std::optional<BodySection> parse_body_item(const std::string& item) {
  BodySection section;
  std::string upper = item;
  std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char c) { return std::toupper(c); });
  if (upper == "RFC822") return BodySection{"RFC822", "", "", {}, std::nullopt, false};
  if (upper == "RFC822.HEADER") return BodySection{"RFC822.HEADER", "", "HEADER", {}, std::nullopt, true};
  if (upper == "RFC822.TEXT") return BodySection{"RFC822.TEXT", "", "TEXT", {}, std::nullopt, false};
  std::size_t open = upper.find('[');
  const std::size_t close = upper.find(']');
  if (open == std::string::npos || close == std::string::npos || close < open) return std::nullopt;
  const std::string head = upper.substr(0, open);
  std::string inside = upper.substr(open + 1, close - open - 1);
  if (head == "BINARY" || head == "BINARY.PEEK" || head == "BINARY.SIZE") {
    // Only a part number (or nothing, the whole message) may name what BINARY decodes.
    if (!inside.empty() && !part_number(inside)) return std::nullopt;
    section.binary = true;
    section.size_only = head == "BINARY.SIZE";
    section.peek = head != "BINARY";
    section.part = inside;
    section.name = fmt::format("{}[{}]", section.size_only ? "BINARY.SIZE" : "BINARY", inside);
  } else if (head != "BODY" && head != "BODY.PEEK") {
    return std::nullopt;
  }
  if (section.binary) {
    const std::string rest = upper.substr(close + 1);
    if (rest.empty()) return section;
    unsigned long long start = 0;
    unsigned long long count = 0;
    if (section.size_only || std::sscanf(rest.c_str(), "<%llu.%llu>", &start, &count) != 2 || rest.back() != '>') {
      return std::nullopt;
    }
    section.partial = std::pair{start, count};
    section.name += fmt::format("<{}>", start);
    return section;
  }
  section.peek = head == "BODY.PEEK";
  const std::size_t paren = inside.find(" (");
  if (paren != std::string::npos) {
    if (inside.back() != ')') return std::nullopt;
    section.fields = split_flags(inside.substr(paren + 2, inside.size() - paren - 3));
    inside = inside.substr(0, paren);
  }
  // "1.2.HEADER": the leading numbers name the part, what follows is the text specifier.
  std::size_t split = 0;
  while (split < inside.size() && (std::isdigit(static_cast<unsigned char>(inside[split])) || inside[split] == '.')) {
    ++split;
  }
  if (split > 0 && split < inside.size()) --split;  // the dot before the text specifier
  section.part = inside.substr(0, split);
  section.text = inside.substr(split < inside.size() && inside[split] == '.' ? split + 1 : split);
  if (!section.part.empty() && !part_number(section.part)) return std::nullopt;
  const std::string& text = section.text;
  if (text != "" && text != "HEADER" && text != "TEXT" && text != "HEADER.FIELDS" && text != "HEADER.FIELDS.NOT" &&
      !(text == "MIME" && !section.part.empty())) {
    return std::nullopt;
  }
  if ((text == "HEADER.FIELDS" || text == "HEADER.FIELDS.NOT") == section.fields.empty()) return std::nullopt;
  section.name = "BODY[" + item.substr(open + 1, close - open - 1) + "]";
  const std::string rest = upper.substr(close + 1);
  if (!rest.empty()) {
    unsigned long long start = 0;
    unsigned long long count = 0;
    if (std::sscanf(rest.c_str(), "<%llu.%llu>", &start, &count) != 2 || rest.back() != '>') return std::nullopt;
    section.partial = std::pair{start, count};
    section.name += fmt::format("<{}>", start);
  }
  return section;
}

// Whether a section needs the message's MIME structure, not just its header and body.
bool needs_structure(const BodySection& section) {
  return !section.part.empty();
}

// The octets a section names; empty for a part the message does not have (RFC 3501 section 6.4.5). nullopt
// for a BINARY section whose transfer encoding is unknown. A view into `content` where it can be, else into
// `scratch`. `parsed` is only read when needs_structure(section).
std::optional<std::string_view> section_content(std::string_view content, const mime::MimeMessage* parsed,
                                                const BodySection& section, std::string& scratch) {
  std::string_view found_text;
  if (!section.part.empty()) {
    std::optional<mime::MimeMessage::Section> found = parsed->section(section.part);
    if (found && section.binary) {
      if (!found->leaf) {
        found_text = found->text;
      } else {
        std::optional<std::string> decoded = mime::MimeMessage::decode(found->encoding, found->text);
        if (!decoded) return std::nullopt;
        scratch = std::move(*decoded);
        found_text = scratch;
      }
    } else if (found) {
      const bool message = found->message;
      if (section.text.empty()) found_text = found->text;
      if (section.text == "MIME") found_text = found->mime;
      if (message && section.text == "HEADER") found_text = found->header;
      if (message && section.text == "TEXT") found_text = found->body;
      if (message && (section.text == "HEADER.FIELDS" || section.text == "HEADER.FIELDS.NOT")) {
        scratch = header_fields(found->header, section.fields, section.text == "HEADER.FIELDS.NOT");
        found_text = scratch;
      }
    }
  } else if (section.text.empty()) {
    found_text = content;  // the whole message, BINARY[] too
  } else {
    const auto [header, body] = sdk::split_header(content);
    if (section.text == "HEADER") found_text = header;
    if (section.text == "TEXT") found_text = body;
    if (section.text == "HEADER.FIELDS" || section.text == "HEADER.FIELDS.NOT") {
      scratch = header_fields(header, section.fields, section.text == "HEADER.FIELDS.NOT");
      found_text = scratch;
    }
  }
  if (section.partial) {
    const auto [start, count] = *section.partial;
    found_text = start >= found_text.size() ? std::string_view() : found_text.substr(start, count);
  }
  return found_text;
}

}  // namespace

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

sdk::Task<bool> ImapSession::refresh() {
  std::shared_ptr<const Messages> now;
  std::uint64_t modseq = 0;
  bool replaced = false;
  sdk::MailStore& store = server_.store();
  const std::optional<std::string> failure = co_await server_.attempt([&] {
    const std::optional<sdk::MailboxState> current = store.mailbox_state(client_.user, mailbox_);
    // A mailbox deleted under the session (by another one) shows as emptied; one made again in its place is
    // another mailbox, whose UIDs would mean other messages.
    if (!current || current->uidvalidity != uidvalidity_) {
      now = std::make_shared<const Messages>();
      replaced = current.has_value();
      return;
    }
    modseq = current->highestmodseq;
    if (modseq == listed_modseq_) return;
    now = lists_.get(client_.user, mailbox_, uidvalidity_, modseq,
                     [&] { return store.list_messages(client_.user, mailbox_); });
  });
  if (failure) co_return false;
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
    untagged(fmt::format("{} FETCH ({}{})", k + 1, condstore_ ? fmt::format("UID {} ", uid) : "", flags_item(*entry)));
  }
  messages_ = MessageList(now);
  listed_modseq_ = modseq;
  if (messages_.size() != kept) untagged(fmt::format("{} EXISTS", messages_.size()));
  if (replaced) {
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
  return condstore_ ? fmt::format("FLAGS ({}) MODSEQ ({})", message.flags, message.modseq)
                    : fmt::format("FLAGS ({})", message.flags);
}

// A CONDSTORE modifier list: "(CHANGEDSINCE n)" or "(UNCHANGEDSINCE n)". nullopt when it is not that one.
std::optional<std::uint64_t> modifier(const Value& list, std::string_view name) {
  if (list.kind != Value::Kind::list || list.items.size() != 2 || !list.items[0].is_atom(name)) return std::nullopt;
  const std::string& digits = list.items[1].text;
  if (digits.empty() || !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  return std::strtoull(digits.c_str(), nullptr, 10);
}

sdk::Task<void> ImapSession::on_fetch(const Command& command) {
  const bool uid = command.name == "UID FETCH";
  std::optional<std::uint64_t> changed_since;
  bool vanished = false;
  if (command.arguments.size() == 3) {
    // (CHANGEDSINCE n), or with QRESYNC on a UID FETCH (CHANGEDSINCE n VANISHED) (RFC 7162 section 3.2.6).
    Value modifiers = command.arguments[2];
    if (uid && qresync_ && modifiers.kind == Value::Kind::list && modifiers.items.size() == 3 &&
        modifiers.items[2].is_atom("VANISHED")) {
      vanished = true;
      modifiers.items.pop_back();
    }
    changed_since = modifier(modifiers, "CHANGEDSINCE");
    if (!changed_since) {
      tagged(command, "BAD", "Syntax: FETCH set items [(CHANGEDSINCE modseq)]");
      co_return;
    }
    condstore_ = true;
  }
  if (command.arguments.size() != 2 && !changed_since) {
    tagged(command, "BAD", "Syntax: FETCH set items");
    co_return;
  }
  std::optional<std::vector<std::size_t>> indexes = select_messages(command.arguments[0], uid);
  if (!indexes) {
    tagged(command, "BAD", "Bad sequence set");
    co_return;
  }
  std::vector<std::string> items;
  const Value& wanted = command.arguments[1];
  if (wanted.kind == Value::Kind::list) {
    for (const Value& item : wanted.items) items.push_back(item.text);
  } else if (wanted.is_atom("FAST")) {
    items = {"FLAGS", "INTERNALDATE", "RFC822.SIZE"};
  } else if (wanted.is_atom("ALL")) {
    items = {"FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"};
  } else if (wanted.is_atom("FULL")) {
    items = {"FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"};
  } else {
    items = {wanted.text};
  }
  if (changed_since && std::none_of(items.begin(), items.end(),
                                    [](const std::string& item) { return sdk::lower_ascii(item) == "modseq"; })) {
    items.push_back("MODSEQ");
  }
  if (std::any_of(items.begin(), items.end(),
                  [](const std::string& item) { return sdk::lower_ascii(item) == "modseq"; })) {
    condstore_ = true;
  }
  if (vanished) {
    // The UIDs of the set that went since: the set's own '*' is the largest UID the client may know of.
    std::vector<std::uint32_t> gone;
    sdk::MailStore& store = server_.store();
    const std::optional<std::string> failure =
        co_await server_.attempt([&] { gone = store.expunged_since(client_.user, mailbox_, *changed_since); });
    if (failure) {
      tagged(command, "NO", "[UNAVAILABLE] Changes not available, try again");
      co_return;
    }
    const auto ranges = parse_sequence_set(command.arguments[0].text, 0xffffffffu);
    std::erase_if(gone, [&](std::uint32_t gone_uid) {
      return !ranges || !in_sequence_set(*ranges, gone_uid) || messages_.contains_uid(gone_uid);
    });
    if (!gone.empty()) untagged(fmt::format("VANISHED (EARLIER) {}", compact_set(gone)));
  }
  if (changed_since) {
    std::erase_if(*indexes, [&](std::size_t index) { return messages_[index].modseq <= *changed_since; });
  }
  std::vector<BodySection> sections;
  bool sets_seen = false;
  bool structure = false;  // ENVELOPE, BODY or BODYSTRUCTURE: the message must be read and parsed
  for (const std::string& item : items) {
    const std::string lower = sdk::lower_ascii(item);
    if (lower == "flags" || lower == "uid" || lower == "rfc822.size" || lower == "internaldate" || lower == "modseq") {
      continue;
    }
    if (lower == "envelope" || lower == "body" || lower == "bodystructure") {
      structure = true;
      continue;
    }
    std::optional<BodySection> section = parse_body_item(item);
    if (!section) {
      tagged(command, "BAD", fmt::format("Unsupported FETCH item {}", item));
      co_return;
    }
    sets_seen = sets_seen || !section->peek;
    sections.push_back(std::move(*section));
  }
  bool unknown_encoding = false;
  bool expunge_issued = false;
  // Messages are read, and \\Seen set, in batches: one trip to the worker pool per batch, not per message.
  constexpr std::size_t kBatch = 256;
  std::vector<std::string> lowered;
  for (const std::string& item : items) lowered.push_back(sdk::lower_ascii(item));
  const bool flags_asked = std::find(lowered.begin(), lowered.end(), "flags") != lowered.end();
  const bool parse = structure || std::any_of(sections.begin(), sections.end(), needs_structure);
  sdk::MailStore& store = server_.store();
  std::string scratch;
  for (std::size_t start = 0; start < indexes->size(); start += kBatch) {
    const std::size_t end = std::min(start + kBatch, indexes->size());
    std::vector<std::optional<Structure>> cached(end - start);
    std::vector<std::int64_t> wanted_ids;
    std::vector<std::int64_t> unseen;
    for (std::size_t k = start; k < end; ++k) {
      const sdk::MessageEntry& message = messages_[(*indexes)[k]];
      if (structure) cached[k - start] = structures_.find(message.content_id);
      if (!sections.empty() || (structure && !cached[k - start])) wanted_ids.push_back(message.id);
      if (sets_seen && !read_only_ && !has_flag(message.flags, "\\Seen")) unseen.push_back(message.id);
    }
    std::vector<std::optional<std::string>> read;
    std::vector<sdk::MessageEntry> seen;
    const std::optional<std::string> failure = co_await server_.attempt([&] {
      if (!wanted_ids.empty()) read = store.read_messages(client_.user, wanted_ids);
      if (!unseen.empty()) {
        seen = store.change_flags(client_.user, unseen, sdk::FlagChange::add, {"\\Seen"}, std::nullopt).changed;
      }
    });
    if (failure) {
      tagged(command, "NO", "[UNAVAILABLE] Message not available, try again");
      co_return;
    }
    if (!seen.empty()) server_.mailbox_changed({client_.user});
    std::size_t next_read = 0;
    for (std::size_t k = start; k < end; ++k) {
      const std::size_t index = (*indexes)[k];
      auto now_seen = std::find_if(seen.begin(), seen.end(),
                                   [&](const sdk::MessageEntry& entry) { return entry.id == messages_[index].id; });
      if (now_seen != seen.end()) {
        messages_.set_flags(index, now_seen->flags, now_seen->modseq);
        listed_modseq_ = 0;
      }
      const sdk::MessageEntry& message = messages_[index];
      const bool was_read = next_read < wanted_ids.size() && wanted_ids[next_read] == message.id;
      const std::optional<std::string>* stored = was_read ? &read[next_read++] : nullptr;
      if (stored && !*stored) {
        // Expunged by another session since this one last heard: its data is gone (RFC 2180 section 4.1.2).
        expunge_issued = true;
        continue;
      }
      const std::string_view content = stored ? std::string_view(**stored) : std::string_view();
      std::optional<mime::MimeMessage> parsed;
      if (was_read && parse) parsed.emplace(content);
      if (structure && !cached[k - start]) {
        cached[k - start] = Structure{envelope(*parsed), body_structure(*parsed, false), body_structure(*parsed, true)};
        structures_.insert(message.content_id, *cached[k - start]);
      }
      // The response is written straight into the output, bodies copied once.
      fmt::format_to(std::back_inserter(pending_), "* {} FETCH (", index + 1);
      bool first = true;
      const auto add = [&](std::string_view text) {
        if (!first) pending_ += ' ';
        first = false;
        pending_ += text;
      };
      if (uid) add(fmt::format("UID {}", message.uid));
      for (const std::string& lower : lowered) {
        if (lower == "uid" && !uid) add(fmt::format("UID {}", message.uid));
        if (lower == "flags") add(fmt::format("FLAGS ({})", message.flags));
        if (lower == "modseq") add(fmt::format("MODSEQ ({})", message.modseq));
        if (lower == "rfc822.size") add(fmt::format("RFC822.SIZE {}", message.size));
        if (lower == "internaldate") add(fmt::format("INTERNALDATE {}", internal_date(message.received)));
        if (lower == "envelope") add("ENVELOPE " + cached[k - start]->envelope);
        if (lower == "body") add("BODY " + cached[k - start]->body);
        if (lower == "bodystructure") add("BODYSTRUCTURE " + cached[k - start]->bodystructure);
      }
      for (const BodySection& section : sections) {
        const std::optional<std::string_view> data =
            section_content(content, parsed ? &*parsed : nullptr, section, scratch);
        if (!data) {
          unknown_encoding = true;
          continue;
        }
        if (section.size_only) {
          add(fmt::format("{} {}", section.name, data->size()));
        } else {
          // A NUL can only travel in a literal8 (RFC 3516 section 4.3).
          const bool nul = section.binary && data->find('\0') != std::string_view::npos;
          add(fmt::format("{} {}{{{}}}\r\n", section.name, nul ? "~" : "", data->size()));
          pending_ += *data;
        }
      }
      // A fetch that set \\Seen tells the new flags (RFC 3501 section 6.4.5).
      if (now_seen != seen.end() && !flags_asked) {
        add(condstore_ ? fmt::format("FLAGS ({}) MODSEQ ({})", message.flags, message.modseq)
                       : fmt::format("FLAGS ({})", message.flags));
      }
      pending_ += ")\r\n";
    }
    if (pending_.size() > 256 * 1024) co_await flush();
  }
  if (expunge_issued) {
    tagged(command, "NO", "[EXPUNGEISSUED] Some messages were expunged meanwhile; the others were fetched");
    co_return;
  }
  if (unknown_encoding) {
    tagged(command, "NO", "[UNKNOWN-CTE] A part's Content-Transfer-Encoding cannot be decoded");
    co_return;
  }
  tagged(command, "OK", fmt::format("{} completed", command.name));
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
  const std::optional<std::string> failure =
      co_await server_.attempt([&] { result = store.change_flags(client_.user, ids, change, flags, unchanged_since); });
  const std::vector<sdk::MessageEntry>& changed = result.changed;
  if (failure) {
    tagged(command, "NO", "[UNAVAILABLE] Flags not stored, try again");
    co_return;
  }
  server_.mailbox_changed({client_.user});
  std::unordered_map<std::int64_t, const sdk::MessageEntry*> by_id;
  for (const sdk::MessageEntry& entry : changed) by_id.emplace(entry.id, &entry);
  const std::unordered_set<std::int64_t> refused(result.modified.begin(), result.modified.end());
  std::vector<std::uint32_t> modified;
  for (std::size_t index : *indexes) {
    if (refused.contains(messages_[index].id)) {
      modified.push_back(uid ? messages_[index].uid : static_cast<std::uint32_t>(index + 1));
    }
    const auto updated = by_id.find(messages_[index].id);
    if (updated == by_id.end()) continue;
    const sdk::MessageEntry& entry = *updated->second;
    messages_.set_flags(index, entry.flags, entry.modseq);
    listed_modseq_ = 0;
    if (!silent) {
      // RFC 7162 section 3.1: with CONDSTORE on, a FETCH that STORE causes carries the UID and MODSEQ.
      untagged(uid || condstore_
                   ? fmt::format("{} FETCH (UID {} {})", index + 1, messages_[index].uid, flags_item(entry))
                   : fmt::format("{} FETCH ({})", index + 1, flags_item(entry)));
    }
  }
  if (!modified.empty()) {
    tagged(command, "OK",
           fmt::format("[MODIFIED {}] Conditional {} failed for some", fmt::join(modified, ","), command.name));
    co_return;
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
      co_await server_.attempt([&] { store.remove_messages(client_.user, ids); });
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
