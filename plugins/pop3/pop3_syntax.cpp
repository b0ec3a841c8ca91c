#include "pop3_syntax.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace tern::pop3 {

CommandLine split_command(std::string_view line) {
  const std::size_t space = line.find(' ');
  CommandLine command{std::string(line.substr(0, space)),
                      space == std::string_view::npos ? std::string_view() : line.substr(space + 1)};
  std::transform(command.verb.begin(), command.verb.end(), command.verb.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return command;
}

std::optional<std::size_t> parse_number(std::string_view text) {
  std::size_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

void append_multiline(std::string& out, std::string_view message, std::optional<std::size_t> body_lines) {
  out.reserve(out.size() + message.size() + message.size() / 64 + 8);
  bool in_body = false;
  std::size_t body_count = 0;
  while (!message.empty()) {
    std::size_t end = message.find('\n');
    std::string_view line = message.substr(0, end == std::string_view::npos ? message.size() : end);
    message.remove_prefix(end == std::string_view::npos ? message.size() : end + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (in_body && body_lines && body_count++ >= *body_lines) break;
    if (!in_body && line.empty()) in_body = true;
    if (!line.empty() && line.front() == '.') out += '.';
    out.append(line).append("\r\n");
  }
  out += ".\r\n";
}

}  // namespace tern::pop3
