// SEARCH and UID SEARCH (RFC 3501 section 6.4.4): flags, sizes, UIDs and sequence sets, header fields, body
// and text, and internal dates, combined with NOT, OR and parentheses.
#include <algorithm>
#include <ctime>

#include <fmt/ranges.h>

#include "addresses.hpp"
#include "encoded_words.hpp"
#include "imap_session.hpp"
#include "mime_message.hpp"
#include "tern/sdk/header.hpp"
#include "tern/sdk/text.hpp"
#include "threading.hpp"

namespace tern::imap {
namespace {

constexpr const char* kMonths[] = {"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"};

struct Candidate {
  const sdk::MessageEntry& message;
  std::uint32_t sequence;
  std::uint32_t largest_uid;
  std::uint32_t count;
  bool recent;                              // \\Recent in this session
  std::string_view content;                 // the whole message, read only when a key needs it
  const std::vector<std::uint32_t>& saved;  // SEARCHRES's "$": the UIDs of the last SEARCH RETURN (SAVE)
};

bool contains(std::string_view haystack, std::string_view needle) {
  return sdk::lower_ascii(haystack).find(sdk::lower_ascii(needle)) != std::string::npos;
}

// Whether a base64 or quoted-printable leaf part of the message holds the text once decoded. Only a message
// that names one of those encodings somewhere is parsed.
bool encoded_parts_contain(std::string_view content, std::string_view wanted) {
  const std::string lowered = sdk::lower_ascii(content);
  if (lowered.find("base64") == std::string::npos && lowered.find("quoted-printable") == std::string::npos) {
    return false;
  }
  const mime::MimeMessage parsed(content);
  for (const mime::MimeMessage::Section& part : parsed.leaves()) {
    const std::string encoding = sdk::lower_ascii(part.encoding);
    if (encoding.find("base64") == std::string::npos && encoding.find("quoted-printable") == std::string::npos) {
      continue;
    }
    const std::optional<std::string> decoded = mime::MimeMessage::decode(part.encoding, part.text);
    if (decoded && contains(*decoded, wanted)) return true;
  }
  return false;
}

// "1-Feb-1994" as days since the epoch; nullopt when malformed.
std::optional<std::int64_t> search_day(std::string_view text) {
  int day = 0;
  char month[4] = {};
  int year = 0;
  const std::string copy(text);
  if (std::sscanf(copy.c_str(), "%d-%3s-%d", &day, month, &year) != 3 || day < 1 || day > 31) return std::nullopt;
  const auto found = std::find(std::begin(kMonths), std::end(kMonths), sdk::lower_ascii(month));
  if (found == std::end(kMonths)) return std::nullopt;
  std::tm utc{};
  utc.tm_year = year - 1900;
  utc.tm_mon = static_cast<int>(found - std::begin(kMonths));
  utc.tm_mday = day;
  return static_cast<std::int64_t>(::timegm(&utc)) / 86400;
}

bool needs_content(const std::vector<Value>& keys) {
  static const char* kTextKeys[] = {"from", "to",   "cc",         "bcc",    "subject",  "header",
                                    "body", "text", "sentbefore", "senton", "sentsince"};
  return std::any_of(keys.begin(), keys.end(), [](const Value& key) {
    if (key.kind == Value::Kind::list) return needs_content(key.items);
    const std::string name = sdk::lower_ascii(key.text);
    return key.kind == Value::Kind::atom &&
           std::any_of(std::begin(kTextKeys), std::end(kTextKeys), [&name](const char* text) { return name == text; });
  });
}

// The search keys that test a system flag, and the flag.
constexpr std::pair<const char*, const char*> kFlagKeys[] = {{"seen", "\\Seen"},
                                                             {"deleted", "\\Deleted"},
                                                             {"flagged", "\\Flagged"},
                                                             {"answered", "\\Answered"},
                                                             {"draft", "\\Draft"}};

// BEFORE, ON and SINCE (the arrival day) and SENTBEFORE, SENTON and SENTSINCE (the Date header's day) against `date`;
// nullopt when it is not a date.
std::optional<bool> date_key(const std::string& name, const Value* date, const Candidate& candidate) {
  auto day = date ? search_day(date->text) : std::nullopt;
  if (!day) return std::nullopt;
  if (!name.starts_with("sent")) {
    const std::int64_t received = candidate.message.received / 86400;
    return name == "before" ? received < *day : name == "on" ? received == *day : received >= *day;
  }
  // The day as written in the Date header: time and zone are disregarded (RFC 3501 section 6.4.4).
  const std::optional<SentDate> sent = parse_sent_date(sdk::header_value(candidate.content, "Date").value_or(""));
  if (!sent) return false;  // no Date, or one that cannot be read: no sent date matches
  return name == "sentbefore" ? sent->day < *day : name == "senton" ? sent->day == *day : sent->day >= *day;
}

// BODY and TEXT (`field` "body" or "text"), and a header field's value (FROM, TO, CC, BCC, SUBJECT, or HEADER's
// field when `header`): whether it holds `wanted`, case-insensitively.
bool text_key(const std::string& field, bool header_key, const std::string& wanted, std::string_view content) {
  const auto [header, body] = sdk::split_header(content);
  if (field == "body" || field == "text") {
    // As written first; then as read: encoded-words in the header (TEXT), and base64 or quoted-printable
    // parts decoded (their charset is not converted).
    if (contains(field == "body" ? body : content, wanted)) return true;
    if (field == "text" && contains(decode_encoded_words(header), wanted)) return true;
    return encoded_parts_contain(content, wanted);
  }
  const std::vector<std::string> values = sdk::header_values(header, field);
  // HEADER field "" matches every message that has the field (RFC 3501).
  if (header_key && wanted.empty()) return !values.empty();
  if (contains(decode_encoded_words(fmt::format("{}", fmt::join(values, " "))), wanted)) return true;
  if (header_key || (field != "from" && field != "to" && field != "cc" && field != "bcc")) return false;
  // An address as it reads once parsed: "joe@example.net" matches "<joe (x) @ (y) example.net>" too.
  return std::any_of(values.begin(), values.end(), [&](const std::string& value) {
    const std::vector<mime::Address> addresses = mime::parse_addresses(value);
    return std::any_of(addresses.begin(), addresses.end(), [&](const mime::Address& address) {
      if (!address.mailbox || !address.host) return false;
      const std::string name = address.name ? decode_encoded_words(*address.name) + " " : "";
      return contains(fmt::format("{}<{}@{}>", name, *address.mailbox, *address.host), wanted);
    });
  });
}

// CONDSTORE's MODSEQ key: messages changed at or after this change number. The form with an entry name
// ("/flags/\\seen" all n) asks after one flag's changes; a message's one change number answers it, as RFC 7162
// section 3.1.5 allows a server that keeps no more.
std::optional<bool> modseq_key(const std::vector<Value>& keys, std::size_t& position,
                               const sdk::MessageEntry& message) {
  const auto argument = [&]() -> const Value* { return position < keys.size() ? &keys[position++] : nullptr; };
  const Value* since = argument();
  if (since && since->text.starts_with("/flags/")) {
    const Value* type = argument();
    const std::string kind = type ? sdk::lower_ascii(type->text) : "";
    if (kind != "priv" && kind != "shared" && kind != "all") return std::nullopt;
    since = argument();
  }
  if (!since || since->text.empty() ||
      !std::all_of(since->text.begin(), since->text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  return message.modseq >= std::strtoull(since->text.c_str(), nullptr, 10);
}

// One search key and its arguments; advances `position`. nullopt for a key this server does not know.
std::optional<bool> search_key(const std::vector<Value>& keys, std::size_t& position, const Candidate& candidate) {
  if (position >= keys.size()) return std::nullopt;
  const Value& key = keys[position++];
  const sdk::MessageEntry& message = candidate.message;
  if (key.kind == Value::Kind::list) {
    std::size_t inner = 0;
    bool all = true;
    while (inner < key.items.size()) {
      auto match = search_key(key.items, inner, candidate);
      if (!match) return std::nullopt;
      all = all && *match;
    }
    return all;
  }
  const std::string name = sdk::lower_ascii(key.text);
  for (const auto& [word, flag] : kFlagKeys) {
    if (name == word) return has_flag(message.flags, flag);
    if (name == std::string("un") + word) return !has_flag(message.flags, flag);
  }
  if (name == "all") return true;
  // NEW is recent and unseen, OLD not recent (RFC 3501 section 6.4.4).
  if (name == "recent" || name == "old") return candidate.recent == (name == "recent");
  if (name == "new") return candidate.recent && !has_flag(message.flags, "\\Seen");
  if (name == "not") {
    auto inner = search_key(keys, position, candidate);
    if (!inner) return std::nullopt;
    return !*inner;
  }
  if (name == "or") {
    auto first = search_key(keys, position, candidate);
    auto second = search_key(keys, position, candidate);
    if (!first || !second) return std::nullopt;
    return *first || *second;
  }
  const auto argument = [&]() -> const Value* { return position < keys.size() ? &keys[position++] : nullptr; };
  if (name == "keyword" || name == "unkeyword") {
    const Value* flag = argument();
    if (!flag) return std::nullopt;
    return has_flag(message.flags, flag->text) == (name == "keyword");
  }
  if (name == "larger" || name == "smaller") {
    const Value* size = argument();
    if (!size) return std::nullopt;
    const std::uint64_t limit = std::strtoull(size->text.c_str(), nullptr, 10);
    return name == "larger" ? message.size > limit : message.size < limit;
  }
  if (name == "uid") {
    const Value* set = argument();
    if (set && set->text == "$") return std::binary_search(candidate.saved.begin(), candidate.saved.end(), message.uid);
    auto ranges = set ? parse_sequence_set(set->text, std::max<std::uint32_t>(candidate.largest_uid, 1)) : std::nullopt;
    if (!ranges) return std::nullopt;
    return in_sequence_set(*ranges, message.uid);
  }
  if (name == "modseq") return modseq_key(keys, position, message);
  if (name == "before" || name == "on" || name == "since" || name == "sentbefore" || name == "senton" ||
      name == "sentsince") {
    return date_key(name, argument(), candidate);
  }
  if (name == "from" || name == "to" || name == "cc" || name == "bcc" || name == "subject" || name == "header" ||
      name == "body" || name == "text") {
    const Value* field = name == "header" ? argument() : nullptr;
    const Value* wanted = argument();
    if (!wanted || (name == "header" && !field)) return std::nullopt;
    return text_key(field ? sdk::lower_ascii(field->text) : name, name == "header", wanted->text, candidate.content);
  }
  if (key.text == "$") return std::binary_search(candidate.saved.begin(), candidate.saved.end(), message.uid);
  auto ranges = parse_sequence_set(key.text, std::max<std::uint32_t>(candidate.count, 1));
  if (!ranges) return std::nullopt;
  return in_sequence_set(*ranges, candidate.sequence);
}

}  // namespace

bool ImapSession::charset_supported(const Command& command, const Value& charset) {
  const std::string name = sdk::lower_ascii(charset.text);
  if (name == "utf-8" || name == "us-ascii") return true;
  tagged(command, "NO", "[BADCHARSET (UTF-8 US-ASCII)] Unsupported charset");
  return false;
}

sdk::Task<std::optional<std::vector<std::size_t>>> ImapSession::search_messages(const Command& command,
                                                                                const std::vector<Value>& keys,
                                                                                std::vector<std::string>& contents) {
  contents.clear();
  if (needs_content(keys)) {
    std::vector<std::int64_t> ids;
    ids.reserve(messages_.size());
    for (const sdk::MessageEntry& message : messages_) ids.push_back(message.id);
    sdk::MailStore& store = server_.store();
    const std::optional<std::string> failure = co_await attempt([&] {
      // In batches, so that the store's reader is not held for a whole mailbox while logins wait for it. A
      // message expunged meanwhile has no text to match.
      contents.reserve(ids.size());
      constexpr std::size_t kBatch = 256;
      for (std::size_t start = 0; start < ids.size(); start += kBatch) {
        const std::vector<std::int64_t> batch(
            ids.begin() + static_cast<std::ptrdiff_t>(start),
            ids.begin() + static_cast<std::ptrdiff_t>(std::min(start + kBatch, ids.size())));
        for (std::optional<std::string>& content : store.mailboxes().read_messages(client_.user, batch)) {
          contents.push_back(content ? std::move(*content) : std::string());
        }
      }
    });
    if (failure) {
      tagged(command, "NO", "[UNAVAILABLE] Messages not available, try again");
      co_return std::nullopt;
    }
  }
  const std::uint32_t largest_uid = messages_.empty() ? 0 : messages_.back().uid;
  std::vector<std::size_t> matches;
  if (messages_.empty()) {
    // The keys are read against a message that is not there, so that a malformed one is BAD here too.
    const sdk::MessageEntry nothing;
    const Candidate candidate{nothing, 0, 0, 0, false, std::string_view(), saved_};
    for (std::size_t position = 0; position < keys.size();) {
      if (!search_key(keys, position, candidate)) {
        tagged(command, "BAD", "Unsupported or malformed search key");
        co_return std::nullopt;
      }
    }
  }
  for (std::size_t i = 0; i < messages_.size(); ++i) {
    const Candidate candidate{messages_[i],
                              static_cast<std::uint32_t>(i + 1),
                              largest_uid,
                              static_cast<std::uint32_t>(messages_.size()),
                              !rev2_ && std::binary_search(recent_.begin(), recent_.end(), messages_[i].uid),
                              contents.empty() ? std::string_view() : std::string_view(contents[i]),
                              saved_};
    std::size_t position = 0;
    bool all = true;
    while (position < keys.size()) {
      auto match = search_key(keys, position, candidate);
      if (!match) {
        tagged(command, "BAD", "Unsupported or malformed search key");
        co_return std::nullopt;
      }
      all = all && *match;
    }
    if (all) matches.push_back(i);
  }
  co_return matches;
}

sdk::Task<void> ImapSession::on_search(const Command& command) {
  const bool uid = command.name == "UID SEARCH";
  std::vector<Value> keys = command.arguments;
  // ESEARCH (RFC 4731): SEARCH RETURN (MIN MAX COUNT ALL) keys. An empty list means ALL, and IMAP4rev2 answers
  // every SEARCH so. SAVE (SEARCHRES, RFC 5182) keeps the result for "$"; alone, it is all that is returned.
  std::optional<std::vector<std::string>> returns;
  if (keys.size() >= 2 && keys[0].is_atom("RETURN") && keys[1].kind == Value::Kind::list) {
    returns.emplace();
    for (const Value& option : keys[1].items) {
      const std::string name = sdk::lower_ascii(option.text);
      if (name != "min" && name != "max" && name != "count" && name != "all" && name != "save") {
        tagged(command, "BAD", fmt::format("Unknown RETURN option {}", option.text));
        co_return;
      }
      returns->push_back(name);
    }
    if (returns->empty()) returns->push_back("all");
    keys.erase(keys.begin(), keys.begin() + 2);
  } else if (rev2_) {
    returns = std::vector<std::string>{"all"};
  }
  if (keys.size() >= 2 && keys[0].is_atom("CHARSET")) {
    if (!charset_supported(command, keys[1])) co_return;
    keys.erase(keys.begin(), keys.begin() + 2);
  }
  if (keys.empty()) {
    tagged(command, "BAD", "Syntax: SEARCH keys");
    co_return;
  }
  const bool modseq_asked =
      std::any_of(keys.begin(), keys.end(), [](const Value& key) { return key.is_atom("MODSEQ"); });
  if (modseq_asked) condstore_ = true;
  std::vector<std::string> contents;
  const std::optional<std::vector<std::size_t>> matches = co_await search_messages(command, keys, contents);
  if (!matches) co_return;
  std::vector<std::uint32_t> found;
  std::uint64_t highest_found = 0;
  for (std::size_t i : *matches) {
    found.push_back(uid ? messages_[i].uid : static_cast<std::uint32_t>(i + 1));
    highest_found = std::max(highest_found, messages_[i].modseq);
  }
  const auto asked = [&returns](std::string_view option) {
    return returns && std::find(returns->begin(), returns->end(), option) != returns->end();
  };
  if (asked("save")) {
    // RFC 5182 section 2.4: with MIN or MAX (and neither ALL nor COUNT) only those are saved.
    saved_.clear();
    if ((asked("min") || asked("max")) && !asked("all") && !asked("count")) {
      if (!matches->empty() && asked("min")) saved_.push_back(messages_[matches->front()].uid);
      const std::uint32_t last = matches->empty() ? 0 : messages_[matches->back()].uid;
      if (!matches->empty() && asked("max") && (saved_.empty() || saved_.back() != last)) saved_.push_back(last);
    } else {
      for (std::size_t i : *matches) saved_.push_back(messages_[i].uid);
    }
  }
  if (returns && !(returns->size() == 1 && asked("save"))) {
    std::string result = fmt::format("ESEARCH (TAG {}){}", imap_string(command.tag), uid ? " UID" : "");
    for (const std::string& option : *returns) {
      if (option == "min" && !found.empty()) result += fmt::format(" MIN {}", found.front());
      if (option == "max" && !found.empty()) result += fmt::format(" MAX {}", found.back());
      if (option == "count") result += fmt::format(" COUNT {}", found.size());
      if (option == "all" && !found.empty()) result += " ALL " + compact_set(found);
    }
    if (modseq_asked && !found.empty()) result += fmt::format(" MODSEQ {}", highest_found);
    untagged(result);
  } else if (!returns) {
    // RFC 7162 section 3.1.5: a SEARCH with MODSEQ tells the highest change number among the matches.
    const std::string modseq = modseq_asked && !found.empty() ? fmt::format(" (MODSEQ {})", highest_found) : "";
    untagged(fmt::format("SEARCH{}{}{}", found.empty() ? "" : " ", fmt::join(found, " "), modseq));
  }
  tagged(command, "OK", fmt::format("{} completed", command.name));
}

}  // namespace tern::imap
