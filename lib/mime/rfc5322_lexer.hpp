// What the MIME parser and the address parser share of RFC 5322's lexical rules (section 3.2): white space,
// comments, and upper-casing of the names MIME compares.
#pragma once

#include <algorithm>
#include <string>
#include <string_view>

namespace tern::mime {

inline bool blank(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

inline std::string upper(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; });
  return out;
}

// Where a comment that opens at `open` ends: after its matching ')', nested comments and quoted pairs
// included, or at the end of the text.
inline std::size_t after_comment(std::string_view text, std::size_t open) {
  int depth = 0;
  std::size_t at = open;
  while (at < text.size()) {
    const char c = text[at++];
    if (c == '\\') {
      ++at;
    } else if (c == '(') {
      ++depth;
    } else if (c == ')' && --depth == 0) {
      break;
    }
  }
  return std::min(at, text.size());
}

}  // namespace tern::mime
