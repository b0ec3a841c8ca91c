// FETCH and UID FETCH (RFC 3501 section 6.4.5, RFC 3516 BINARY, RFC 7162 CHANGEDSINCE and VANISHED): the command is
// read into a plan first, then the messages are read in batches and each response is written from the plan.
#include <algorithm>
#include <ctime>
#include <sstream>

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

// Messages are read, and \\Seen set, in batches: one trip to the worker pool per batch, not per message.
constexpr std::size_t kBatch = 256;

}  // namespace

struct ImapSession::FetchPlan {
  bool uid = false;                            // UID FETCH: every response carries the UID
  std::optional<std::uint64_t> changed_since;  // CHANGEDSINCE: only messages changed after it
  bool vanished = false;                       // VANISHED: what went since, first
  std::vector<std::size_t> indexes;            // the snapshot indexes of the messages asked for
  std::vector<std::string> items;              // the items asked for, lower-cased, macros expanded
  std::vector<BodySection> sections;           // the BODY[...], BINARY[...] and RFC822.* items
  bool sets_seen = false;                      // a non-peek section: \\Seen is set
  bool structure = false;                      // ENVELOPE, BODY or BODYSTRUCTURE: the message is parsed
  bool parse = false;                          // the message is parsed (a structure, or a part asked for)
  bool flags_asked = false;
};

// What reading a batch found wrong, for the tagged reply.
struct ImapSession::FetchTrouble {
  bool unknown_encoding = false;  // a BINARY part whose transfer encoding cannot be undone
  bool expunge_issued = false;    // a message another session expunged meanwhile
};

bool ImapSession::plan_fetch(const Command& command, FetchPlan& plan) {
  plan.uid = command.name == "UID FETCH";
  if (command.arguments.size() == 3) {
    // (CHANGEDSINCE n), or with QRESYNC on a UID FETCH (CHANGEDSINCE n VANISHED) (RFC 7162 section 3.2.6).
    Value modifiers = command.arguments[2];
    if (plan.uid && qresync_ && modifiers.kind == Value::Kind::list && modifiers.items.size() == 3 &&
        modifiers.items[2].is_atom("VANISHED")) {
      plan.vanished = true;
      modifiers.items.pop_back();
    }
    plan.changed_since = modifier(modifiers, "CHANGEDSINCE");
    if (!plan.changed_since) {
      tagged(command, "BAD", "Syntax: FETCH set items [(CHANGEDSINCE modseq)]");
      return false;
    }
    condstore_ = true;
  }
  if (command.arguments.size() != 2 && !plan.changed_since) {
    tagged(command, "BAD", "Syntax: FETCH set items");
    return false;
  }
  std::optional<std::vector<std::size_t>> indexes = select_messages(command.arguments[0], plan.uid);
  if (!indexes) {
    tagged(command, "BAD", "Bad sequence set");
    return false;
  }
  plan.indexes = std::move(*indexes);
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
  return plan_items(command, items, plan);
}

bool ImapSession::plan_items(const Command& command, const std::vector<std::string>& items, FetchPlan& plan) {
  for (const std::string& item : items) {
    const std::string lower = sdk::lower_ascii(item);
    plan.items.push_back(lower);
    if (lower == "flags" || lower == "uid" || lower == "rfc822.size" || lower == "internaldate" || lower == "modseq") {
      continue;
    }
    if (lower == "envelope" || lower == "body" || lower == "bodystructure") {
      plan.structure = true;
      continue;
    }
    std::optional<BodySection> section = parse_body_item(item);
    if (!section) {
      tagged(command, "BAD", fmt::format("Unsupported FETCH item {}", item));
      return false;
    }
    plan.sets_seen = plan.sets_seen || !section->peek;
    plan.sections.push_back(std::move(*section));
  }
  const auto asked = [&](const char* name) {
    return std::find(plan.items.begin(), plan.items.end(), name) != plan.items.end();
  };
  if (plan.changed_since && !asked("modseq")) plan.items.push_back("modseq");
  if (asked("modseq")) condstore_ = true;
  plan.flags_asked = asked("flags");
  plan.parse = plan.structure || std::any_of(plan.sections.begin(), plan.sections.end(), needs_structure);
  if (plan.changed_since) {
    std::erase_if(plan.indexes, [&](std::size_t index) { return messages_[index].modseq <= *plan.changed_since; });
  }
  return true;
}

sdk::Task<bool> ImapSession::report_vanished(const Command& command, const FetchPlan& plan) {
  // The UIDs of the set that went since: the set's own '*' is the largest UID the client may know of.
  std::vector<std::uint32_t> gone;
  sdk::MailStore& store = server_.store();
  const std::optional<std::string> failure =
      co_await attempt([&] { gone = store.mailboxes().expunged_since(client_.user, mailbox_, *plan.changed_since); });
  if (failure) {
    tagged(command, "NO", "[UNAVAILABLE] Changes not available, try again");
    co_return false;
  }
  const auto ranges = parse_sequence_set(command.arguments[0].text, 0xffffffffu);
  std::erase_if(gone, [&](std::uint32_t gone_uid) {
    return !ranges || !in_sequence_set(*ranges, gone_uid) || messages_.contains_uid(gone_uid);
  });
  if (!gone.empty()) untagged(fmt::format("VANISHED (EARLIER) {}", compact_set(gone)));
  co_return true;
}

sdk::Task<void> ImapSession::on_fetch(const Command& command) {
  FetchPlan plan;
  if (!plan_fetch(command, plan)) co_return;
  if (plan.vanished) {
    const bool reported = co_await report_vanished(command, plan);
    if (!reported) co_return;
  }
  FetchTrouble trouble;
  for (std::size_t start = 0; start < plan.indexes.size(); start += kBatch) {
    const bool fetched =
        co_await fetch_batch(command, plan, start, std::min(start + kBatch, plan.indexes.size()), trouble);
    if (!fetched) co_return;
    if (pending_.size() > 256 * 1024) co_await flush();
  }
  if (trouble.expunge_issued) {
    tagged(command, "NO", "[EXPUNGEISSUED] Some messages were expunged meanwhile; the others were fetched");
  } else if (trouble.unknown_encoding) {
    tagged(command, "NO", "[UNKNOWN-CTE] A part's Content-Transfer-Encoding cannot be decoded");
  } else {
    tagged(command, "OK", fmt::format("{} completed", command.name));
  }
}

sdk::Task<bool> ImapSession::fetch_batch(const Command& command, const FetchPlan& plan, std::size_t start,
                                         std::size_t end, FetchTrouble& trouble) {
  std::vector<std::optional<Structure>> cached(end - start);
  std::vector<std::int64_t> wanted_ids;
  std::vector<std::int64_t> unseen;
  for (std::size_t k = start; k < end; ++k) {
    const sdk::MessageEntry& message = messages_[plan.indexes[k]];
    if (plan.structure) cached[k - start] = structures_.find(message.content_id);
    if (!plan.sections.empty() || (plan.structure && !cached[k - start])) wanted_ids.push_back(message.id);
    if (plan.sets_seen && !read_only_ && !has_flag(message.flags, "\\Seen")) unseen.push_back(message.id);
  }
  std::vector<std::optional<std::string>> read;
  std::vector<sdk::MessageEntry> seen;
  sdk::Mailboxes& mailboxes = server_.store().mailboxes();
  // Flags, sizes, dates and cached structures are in the snapshot: such a batch needs no store at all.
  std::optional<std::string> failure;
  if (!wanted_ids.empty() || !unseen.empty()) {
    failure = co_await attempt([&] {
      if (!wanted_ids.empty()) read = mailboxes.read_messages(client_.user, wanted_ids);
      if (!unseen.empty()) {
        seen = mailboxes.change_flags(client_.user, unseen, sdk::FlagChange::add, {"\\Seen"}, std::nullopt).changed;
      }
    });
  }
  if (failure) {
    tagged(command, "NO", "[UNAVAILABLE] Message not available, try again");
    co_return false;
  }
  if (!seen.empty()) server_.mailbox_changed({client_.user});
  std::size_t next_read = 0;
  for (std::size_t k = start; k < end; ++k) {
    const std::size_t index = plan.indexes[k];
    const auto now_seen = std::find_if(seen.begin(), seen.end(),
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
      trouble.expunge_issued = true;
      continue;
    }
    const std::string_view content = stored ? std::string_view(**stored) : std::string_view();
    std::optional<mime::MimeMessage> parsed;
    if (was_read && plan.parse) parsed.emplace(content);
    if (plan.structure && !cached[k - start]) {
      cached[k - start] = Structure{envelope(*parsed), body_structure(*parsed, false), body_structure(*parsed, true)};
      structures_.insert(message.content_id, *cached[k - start]);
    }
    const Fetched fetched{message, content, parsed ? &*parsed : nullptr,
                          cached[k - start] ? &*cached[k - start] : nullptr, now_seen != seen.end()};
    render_fetch(plan, index, fetched, trouble);
  }
  co_return true;
}

void ImapSession::render_fetch(const FetchPlan& plan, std::size_t index, const Fetched& fetched,
                               FetchTrouble& trouble) {
  const sdk::MessageEntry& message = fetched.message;
  if (plan.flags_asked || fetched.seen_now) announce_flags(message.flags);
  // The response is written straight into the output, bodies copied once.
  fmt::format_to(std::back_inserter(pending_), "* {} FETCH (", index + 1);
  bool first = true;
  const auto add = [&](std::string_view text) {
    if (!first) pending_ += ' ';
    first = false;
    pending_ += text;
  };
  if (plan.uid) add(fmt::format("UID {}", message.uid));
  for (const std::string& item : plan.items) {
    if (item == "uid" && !plan.uid) add(fmt::format("UID {}", message.uid));
    if (item == "flags") add(fmt::format("FLAGS ({})", flags_text(message)));
    if (item == "modseq") add(fmt::format("MODSEQ ({})", message.modseq));
    if (item == "rfc822.size") add(fmt::format("RFC822.SIZE {}", message.size));
    if (item == "internaldate") add(fmt::format("INTERNALDATE {}", internal_date(message.received)));
    if (item == "envelope") add("ENVELOPE " + fetched.structure->envelope);
    if (item == "body") add("BODY " + fetched.structure->body);
    if (item == "bodystructure") add("BODYSTRUCTURE " + fetched.structure->bodystructure);
  }
  std::string scratch;
  for (const BodySection& section : plan.sections) {
    const std::optional<std::string_view> data = section_content(fetched.content, fetched.parsed, section, scratch);
    if (!data) {
      trouble.unknown_encoding = true;
      continue;
    }
    if (section.size_only) {
      add(fmt::format("{} {}", section.name, data->size()));
    } else {
      // A NUL can only travel in a literal8 (RFC 3516 section 4.3), which only BINARY[] may answer with; a
      // BODY[] of content APPENDed in binary gets 0x80 for each NUL, as a literal allows 8-bit but no NUL.
      const bool nul = data->find('\0') != std::string_view::npos;
      add(fmt::format("{} {}{{{}}}\r\n", section.name, nul && section.binary ? "~" : "", data->size()));
      const std::size_t at = pending_.size();
      pending_ += *data;
      if (nul && !section.binary)
        std::replace(pending_.begin() + static_cast<std::ptrdiff_t>(at), pending_.end(), '\0', '\x80');
    }
  }
  // A fetch that set \\Seen tells the new flags (RFC 3501 section 6.4.5).
  if (fetched.seen_now && !plan.flags_asked) add(flags_item(message));
  pending_ += ")\r\n";
}

}  // namespace tern::imap
