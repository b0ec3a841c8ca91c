// Small text helpers that protocol plugins share: line ends, ASCII case, header fields and dates.
#pragma once

#include <algorithm>
#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>

namespace tern::sdk {

// An RFC 5322 date-time in UTC ("Sun, 22 Nov 2026 19:32:24 +0000") for `seconds` since the epoch: the Date
// of a message the server writes (a report, a reply, a collected message's trace field).
inline std::string rfc5322_date(std::int64_t seconds) {
  const std::time_t time = seconds;
  std::tm utc{};
  ::gmtime_r(&time, &utc);
  char text[64];
  std::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S +0000", &utc);
  return text;
}

// The line without its LF or CRLF terminator.
inline std::string_view strip_line_end(std::string_view line) {
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

// Lower-cases ASCII letters only: protocol keywords and addresses' domains, never UTF-8 text.
inline std::string lower_ascii(std::string_view text) {
  std::string result(text);
  std::transform(result.begin(), result.end(), result.begin(),
                 [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; });
  return result;
}

// The message without the header fields called `name` (any case), continuation lines included; `removed` counts
// them. The body and the other fields are left as they are.
inline std::string without_header_fields(std::string_view message, std::string_view name, std::size_t& removed) {
  std::string kept;
  kept.reserve(message.size());
  removed = 0;
  bool dropping = false;
  std::size_t position = 0;
  while (position < message.size()) {
    const std::size_t end = message.find('\n', position);
    const std::size_t next = end == std::string_view::npos ? message.size() : end + 1;
    const std::string_view line = message.substr(position, next - position);
    if (strip_line_end(line).empty()) break;  // the end of the header section
    const bool continuation = line.front() == ' ' || line.front() == '\t';
    if (!continuation) {
      dropping = line.size() > name.size() && line[name.size()] == ':' &&
                 lower_ascii(line.substr(0, name.size())) == lower_ascii(name);
      if (dropping) ++removed;
    }
    if (!dropping) kept.append(line);
    position = next;
  }
  kept.append(message.substr(position));
  return kept;
}

// Equal but for the case of ASCII letters: header field names, flags, addresses' domains.
inline bool same_ascii(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
           return lower(x) == lower(y);
         });
}

// Calls `visit(name, value)` for each field of the header section, value trimmed, up to the first empty line or
// until `visit` returns true. Continuation lines of folded fields are not visited.
template <typename Visit>
void visit_header_fields(std::string_view message, Visit visit) {
  std::size_t position = 0;
  while (position < message.size()) {
    const std::size_t end = message.find('\n', position);
    std::string_view line =
        message.substr(position, end == std::string_view::npos ? std::string_view::npos : end - position);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) return;
    const std::size_t colon = line.find(':');
    if (colon != std::string_view::npos && line.front() != ' ' && line.front() != '\t') {
      std::string_view value = line.substr(colon + 1);
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
      while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
      if (visit(line.substr(0, colon), value)) return;
    }
    if (end == std::string_view::npos) return;
    position = end + 1;
  }
}

// Whether the header section of `message` (up to the first empty line) has a field named `name`.
inline bool has_header_field(std::string_view message, std::string_view name) {
  bool found = false;
  visit_header_fields(message,
                      [&](std::string_view field, std::string_view) { return found = same_ascii(field, name); });
  return found;
}

// How many fields named `name` the header section has (Received: the hops a message made).
inline std::size_t count_header_fields(std::string_view message, std::string_view name) {
  std::size_t count = 0;
  visit_header_fields(message, [&](std::string_view field, std::string_view) {
    count += same_ascii(field, name) ? 1 : 0;
    return false;
  });
  return count;
}

// Whether a field `name` of the header section has the value `value` (angle brackets aside), ignoring case:
// "Delivered-To: alice@example.org", the mark of a copy that passed that user.
inline bool has_header_value(std::string_view message, std::string_view name, std::string_view value) {
  bool found = false;
  visit_header_fields(message, [&](std::string_view field, std::string_view text) {
    if (text.size() >= 2 && text.front() == '<' && text.back() == '>') text = text.substr(1, text.size() - 2);
    return found = same_ascii(field, name) && same_ascii(text, value);
  });
  return found;
}

inline bool is_ascii(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

}  // namespace tern::sdk
