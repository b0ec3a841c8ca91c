// POP3 syntax (RFC 1939): a command line's verb and argument, message numbers, and the multi-line response a
// message goes out as. Pure code, so it is tested and fuzzed apart from any connection.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace tern::pop3 {

struct CommandLine {
  std::string verb;           // upper-cased
  std::string_view argument;  // what follows the first space, as sent
};

// Splits a command line, its terminator already stripped.
CommandLine split_command(std::string_view line);

// A decimal number and nothing else; nullopt otherwise (empty, signed, spaces, overflow).
std::optional<std::size_t> parse_number(std::string_view text);

// Appends a message as a multi-line response: dot-stuffed, CRLF line ends, then "." CRLF (RFC 1939 section 3).
// With `body_lines`, only the header and that many body lines go out (TOP). The response has no line "."
// before its end, whatever the message holds.
void append_multiline(std::string& out, std::string_view message, std::optional<std::size_t> body_lines);

}  // namespace tern::pop3
