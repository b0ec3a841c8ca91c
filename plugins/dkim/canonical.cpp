#include "canonical.hpp"

#include <cctype>

namespace tern::dkim {

namespace {

bool wsp(char c) {
  return c == ' ' || c == '\t';
}

// Runs of white space made one space, white space at the end of the line taken off (a line without its CRLF).
std::string relaxed_line(std::string_view line) {
  std::string out;
  bool space = false;
  for (const char c : line) {
    if (wsp(c)) {
      space = true;
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

}  // namespace

std::string canonical_field(std::string_view text, Canon canon) {
  if (canon == Canon::simple) return std::string(text);
  const std::size_t colon = text.find(':');
  std::string name(text.substr(0, colon));
  while (!name.empty() && wsp(name.back())) name.pop_back();
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  // Unfolded: line ends dropped, white space runs made one space, trimmed at both ends.
  std::string value;
  for (const char c : text.substr(colon + 1)) {
    if (c == '\r' || c == '\n') continue;
    if (wsp(c)) {
      if (!value.empty() && value.back() != ' ') value += ' ';
      continue;
    }
    value += c;
  }
  while (!value.empty() && value.back() == ' ') value.pop_back();
  return name + ":" + value + "\r\n";
}

std::string canonical_body(std::string_view body, Canon canon) {
  std::string out;
  out.reserve(body.size());
  std::size_t start = 0;
  while (start < body.size()) {
    std::size_t end = body.find("\r\n", start);
    const bool last = end == std::string_view::npos;
    if (last) end = body.size();
    const std::string_view line = body.substr(start, end - start);
    out += canon == Canon::relaxed ? relaxed_line(line) : std::string(line);
    out += "\r\n";
    start = last ? body.size() : end + 2;
  }
  // Empty lines at the end are no part of the body (section 3.4.3 and 3.4.4).
  while (out.size() >= 4 && out.compare(out.size() - 4, 4, "\r\n\r\n") == 0) out.resize(out.size() - 2);
  if (out == "\r\n") out.clear();
  // The simple body is never empty: it is at least one CRLF. The relaxed body of nothing is nothing.
  if (out.empty() && canon == Canon::simple) out = "\r\n";
  return out;
}

}  // namespace tern::dkim
