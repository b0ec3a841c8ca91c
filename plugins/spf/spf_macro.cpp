#include "spf_macro.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <vector>

namespace tern::spf {

namespace {

constexpr std::string_view kDelimiters = ".-+,/_=";
constexpr std::size_t kMaxDomain = 253;

bool is_literal(char c) {
  return (c >= 0x21 && c <= 0x24) || (c >= 0x26 && c <= 0x7e);
}

// The value of one macro letter (lower-case); nullopt for a letter that does not exist or, outside an
// explanation, one only an explanation may use.
std::optional<std::string> letter_value(char letter, const MacroValues& values, bool explanation) {
  switch (letter) {
    case 's': return values.sender;
    case 'l': return values.local_part;
    case 'o': return values.sender_domain;
    case 'd': return values.domain;
    case 'i': return values.ip;
    case 'p': return values.validated.empty() ? std::string("unknown") : values.validated;
    case 'v': return std::string(values.ipv6 ? "ip6" : "in-addr");
    case 'h': return values.helo;
    default: break;
  }
  if (!explanation) return std::nullopt;
  switch (letter) {
    case 'c': return values.ip_text;
    case 'r': return values.receiver.empty() ? std::string("unknown") : values.receiver;
    case 't': return std::to_string(values.timestamp);
    default: return std::nullopt;
  }
}

std::string url_escaped(std::string_view text) {
  std::string escaped;
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '.' || c == '_' || c == '~') {
      escaped += c;
    } else {
      escaped += fmt::format("%{:02X}", u);
    }
  }
  return escaped;
}

// One macro's value transformed: split on the delimiters, reversed when asked, cut to the rightmost `keep`
// parts (0: all) and joined with dots.
std::string transformed(std::string_view value, std::string_view delimiters, bool reverse, std::size_t keep) {
  if (delimiters.empty()) delimiters = ".";
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= value.size(); ++i) {
    if (i == value.size() || delimiters.find(value[i]) != std::string_view::npos) {
      parts.push_back(value.substr(start, i - start));
      start = i + 1;
    }
  }
  if (reverse) std::reverse(parts.begin(), parts.end());
  if (keep != 0 && keep < parts.size()) parts.erase(parts.begin(), parts.end() - static_cast<std::ptrdiff_t>(keep));
  std::string joined;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i != 0) joined += '.';
    joined += parts[i];
  }
  return joined;
}

// Reads a macro-string: with `values`, its expansion; without, "" when it is valid. nullopt when it is not.
// `ends_in_macro` tells whether the last thing read was a %{...}.
std::optional<std::string> walk(std::string_view text, const MacroValues* values, bool explanation,
                                bool* ends_in_macro = nullptr) {
  std::string out;
  bool last_macro = false;
  for (std::size_t i = 0; i < text.size();) {
    const char c = text[i];
    if (c != '%') {
      if (!is_literal(c) && !(explanation && c == ' ')) return std::nullopt;
      out += c;
      ++i;
      last_macro = false;
      continue;
    }
    if (i + 1 >= text.size()) return std::nullopt;
    const char next = text[i + 1];
    last_macro = false;
    if (next == '%' || next == '_' || next == '-') {
      out += next == '%' ? "%" : next == '_' ? " " : "%20";
      i += 2;
      continue;
    }
    if (next != '{') return std::nullopt;
    const std::size_t close = text.find('}', i + 2);
    if (close == std::string_view::npos || close == i + 2) return std::nullopt;
    const std::string_view body = text.substr(i + 2, close - i - 2);
    const char letter = static_cast<char>(std::tolower(static_cast<unsigned char>(body[0])));
    std::size_t at = 1;
    std::size_t keep = 0;
    bool has_digits = false;
    while (at < body.size() && std::isdigit(static_cast<unsigned char>(body[at]))) {
      keep = std::min<std::size_t>(keep * 10 + static_cast<std::size_t>(body[at] - '0'), 1000);
      has_digits = true;
      ++at;
    }
    if (has_digits && keep == 0) return std::nullopt;
    const bool reverse = at < body.size() && (body[at] == 'r' || body[at] == 'R');
    if (reverse) ++at;
    const std::string_view delimiters = body.substr(at);
    if (delimiters.find_first_not_of(kDelimiters) != std::string_view::npos) return std::nullopt;
    MacroValues none;
    const std::optional<std::string> value = letter_value(letter, values ? *values : none, explanation);
    if (!value) return std::nullopt;
    if (values) {
      std::string result = transformed(*value, delimiters, reverse, keep);
      out += std::isupper(static_cast<unsigned char>(body[0])) ? url_escaped(result) : result;
    }
    i = close + 1;
    last_macro = true;
  }
  if (ends_in_macro) *ends_in_macro = last_macro;
  return out;
}

bool valid_top_label(std::string_view label) {
  if (label.empty() || label.size() > 63) return false;
  if (!std::all_of(label.begin(), label.end(),
                   [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-'; })) {
    return false;
  }
  if (label.front() == '-' || label.back() == '-') return false;
  return std::any_of(label.begin(), label.end(), [](char c) { return std::isalpha(static_cast<unsigned char>(c)); });
}

}  // namespace

bool valid_macro_string(std::string_view text, bool explanation) {
  return walk(text, nullptr, explanation).has_value();
}

bool valid_domain_spec(std::string_view text) {
  bool ends_in_macro = false;
  if (text.empty() || !walk(text, nullptr, false, &ends_in_macro)) return false;
  if (ends_in_macro) return true;
  std::string_view name = text;
  if (name.back() == '.') name.remove_suffix(1);
  const std::size_t dot = name.rfind('.');
  if (dot == std::string_view::npos) return false;
  return valid_top_label(name.substr(dot + 1));
}

bool uses_validated_name(std::string_view text) {
  for (std::size_t i = 0; i + 2 < text.size(); ++i) {
    if (text[i] == '%' && text[i + 1] == '%') {
      ++i;
    } else if (text[i] == '%' && text[i + 1] == '{' && (text[i + 2] == 'p' || text[i + 2] == 'P')) {
      return true;
    }
  }
  return false;
}

std::optional<std::string> expand(std::string_view text, const MacroValues& values, bool explanation) {
  return walk(text, &values, explanation);
}

std::optional<std::string> expand_domain(std::string_view text, const MacroValues& values) {
  std::optional<std::string> domain = walk(text, &values, false);
  if (!domain) return std::nullopt;
  if (!domain->empty() && domain->back() == '.') domain->pop_back();
  while (domain->size() > kMaxDomain) {
    const std::size_t dot = domain->find('.');
    if (dot == std::string::npos) break;
    domain->erase(0, dot + 1);
  }
  return domain;
}

}  // namespace tern::spf
