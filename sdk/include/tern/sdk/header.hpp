// The header section of a message (RFC 5322 section 2.2): one walker over its fields, which every reader of a
// header uses, and the lookups built on it.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tern/sdk/text.hpp"

namespace tern::sdk {

// One field of a header section, as visit_header_fields() hands it over: views into the message.
struct HeaderField {
  std::string_view name;  // as written, white space before the colon left out
  std::string_view raw;   // all after the colon, continuation lines and line ends included
  std::string_view text;  // the whole field as written, from its name to its last line end
};

// The header section of a message, up to and including the empty line that ends it, and the body after it.
// LF alone counts as a line end. Without an empty line, all of it is header.
inline std::pair<std::string_view, std::string_view> split_header(std::string_view message) {
  std::size_t line = 0;
  while (line < message.size()) {
    if (message[line] == '\n') return {message.substr(0, line + 1), message.substr(line + 1)};
    if (message.substr(line, 2) == "\r\n") return {message.substr(0, line + 2), message.substr(line + 2)};
    const std::size_t end = message.find('\n', line);
    if (end == std::string_view::npos) break;
    line = end + 1;
  }
  return {message, message.substr(message.size())};
}

// A field value as one line (RFC 5322 section 2.2.3): the line ends of folding taken out, white space at both
// ends trimmed.
inline std::string unfold(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  for (char c : raw) {
    if (c != '\r' && c != '\n') out += c;
  }
  const std::size_t first = out.find_first_not_of(" \t");
  if (first == std::string::npos) return {};
  return out.substr(first, out.find_last_not_of(" \t") + 1 - first);
}

// Calls `visit(field)` for each field of the header section of `message`, in order, until `visit` returns
// true. A line that begins with white space continues the field above it; a line that is no field (no colon,
// or a continuation with nothing to continue) is skipped.
template <typename Visit>
void visit_header_fields(std::string_view message, Visit visit) {
  const std::string_view header = split_header(message).first;
  const auto wsp = [](char c) { return c == ' ' || c == '\t'; };
  std::size_t position = 0;
  while (position < header.size()) {
    std::size_t end = position;
    for (;;) {
      const std::size_t newline = header.find('\n', end);
      end = newline == std::string_view::npos ? header.size() : newline + 1;
      if (newline == std::string_view::npos || end >= header.size() || !wsp(header[end])) break;
    }
    const std::string_view text = header.substr(position, end - position);
    position = end;
    const std::size_t colon = text.find(':');
    if (colon == std::string_view::npos || wsp(text.front())) continue;
    std::string_view name = text.substr(0, colon);
    while (!name.empty() && wsp(name.back())) name.remove_suffix(1);
    if (name.empty() || name.find('\n') != std::string_view::npos) continue;
    if (visit(HeaderField{name, text.substr(colon + 1), text})) return;
  }
}

// The unfolded value of the first field called `name` (any case); nullopt when there is none.
inline std::optional<std::string> header_value(std::string_view message, std::string_view name) {
  std::optional<std::string> found;
  visit_header_fields(message, [&](const HeaderField& field) {
    if (same_ascii(field.name, name)) found = unfold(field.raw);
    return found.has_value();
  });
  return found;
}

// The unfolded values of every field called `name` (any case), in order.
inline std::vector<std::string> header_values(std::string_view message, std::string_view name) {
  std::vector<std::string> found;
  visit_header_fields(message, [&](const HeaderField& field) {
    if (same_ascii(field.name, name)) found.push_back(unfold(field.raw));
    return false;
  });
  return found;
}

// Whether the header section has a field called `name` (any case).
inline bool has_header_field(std::string_view message, std::string_view name) {
  bool found = false;
  visit_header_fields(message, [&](const HeaderField& field) { return found = same_ascii(field.name, name); });
  return found;
}

// How many fields called `name` the header section has (Received: the hops a message made).
inline std::size_t count_header_fields(std::string_view message, std::string_view name) {
  std::size_t count = 0;
  visit_header_fields(message, [&](const HeaderField& field) {
    count += same_ascii(field.name, name) ? 1 : 0;
    return false;
  });
  return count;
}

// Whether a field `name` of the header section has the value `value` (angle brackets aside), ignoring case:
// "Delivered-To: alice@example.org", the mark of a copy that passed that user.
inline bool has_header_value(std::string_view message, std::string_view name, std::string_view value) {
  bool found = false;
  visit_header_fields(message, [&](const HeaderField& field) {
    if (!same_ascii(field.name, name)) return false;
    std::string text = unfold(field.raw);
    if (text.size() >= 2 && text.front() == '<' && text.back() == '>') text = text.substr(1, text.size() - 2);
    return found = same_ascii(text, value);
  });
  return found;
}

// The message without the fields called `name` (any case), continuation lines included; `removed` counts them.
// The body and the other fields are left as they are.
inline std::string without_header_fields(std::string_view message, std::string_view name, std::size_t& removed) {
  std::string kept;
  kept.reserve(message.size());
  removed = 0;
  std::size_t copied = 0;
  visit_header_fields(message, [&](const HeaderField& field) {
    if (!same_ascii(field.name, name)) return false;
    const auto start = static_cast<std::size_t>(field.text.data() - message.data());
    kept.append(message.substr(copied, start - copied));
    copied = start + field.text.size();
    ++removed;
    return false;
  });
  kept.append(message.substr(copied));
  return kept;
}

}  // namespace tern::sdk
