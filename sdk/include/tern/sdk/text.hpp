// Small text helpers that protocol plugins share: line ends and ASCII case.
#pragma once

#include <algorithm>
#include <string>
#include <string_view>

namespace tern::sdk {

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

inline bool is_ascii(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

}  // namespace tern::sdk
