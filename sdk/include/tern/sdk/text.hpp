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

inline bool is_ascii(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

}  // namespace tern::sdk
