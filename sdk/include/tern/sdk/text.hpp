// Small text helpers that plugins share: line ends, ASCII case and dates. Header fields: header.hpp.
#pragma once

#include <algorithm>
#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>

namespace tern::sdk {

// An RFC 5322 date-time in UTC ("Sun, 22 Nov 2026 19:32:24 +0000") for `seconds` since the epoch. Every date
// Tern writes uses it, so every date Tern writes is in UTC: Received fields, a submitted message's missing Date,
// reports, automatic replies.
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

// Equal but for the case of ASCII letters: header field names, flags, addresses' domains.
inline bool same_ascii(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
           return lower(x) == lower(y);
         });
}

inline bool is_ascii(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

}  // namespace tern::sdk
