// SMTP command syntax (RFC 5321 section 4.1): the verb, and the paths and parameters of MAIL and RCPT; and the
// text after DATA. Pure code, so the parsing is tested and fuzzed apart from any connection.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tern/sdk/text.hpp"

namespace tern::smtp {

using sdk::is_ascii;
using sdk::lower_ascii;

// Splits "MAIL FROM:<a@b> SIZE=10" into the upper-cased verb and the rest after one space.
std::pair<std::string, std::string_view> split_command(std::string_view line);

struct PathArgument {
  std::string address;                                          // without angle brackets; empty for the null path <>
  std::vector<std::pair<std::string, std::string>> parameters;  // keyword upper-cased, value as given
};

// Parses the argument of MAIL ("FROM:<path> params") or RCPT ("TO:<path> params"); `keyword` is "FROM" or
// "TO". nullopt on a syntax error. A source route (<@a,@b:user@c>) is dropped as RFC 5321 says; the address
// must then be local-part@domain (or empty, for MAIL only), except RCPT's bare <Postmaster>, which comes back
// as "postmaster".
std::optional<PathArgument> parse_path_argument(std::string_view argument, std::string_view keyword);

// Whether `address` is local-part@domain with a dot-atom or quoted local part and a domain name or address
// literal: the shape RCPT and MAIL accept.
bool valid_mailbox(std::string_view address);

// xtext (RFC 3461 section 4): printable ASCII except '+' and '=', with "+XX" hex escapes. nullopt when malformed.
std::optional<std::string> decode_xtext(std::string_view text);

// DSN NOTIFY (RFC 3461 section 4.1): "NEVER", or a comma list of SUCCESS, FAILURE, DELAY, each once. Returns
// the canonical upper-case form, nullopt when malformed.
std::optional<std::string> parse_notify(std::string_view value);

// DSN ORCPT (RFC 3461 section 4.2): "addr-type;xtext". Returns "addr-type;decoded", nullopt when malformed.
std::optional<std::string> parse_orcpt(std::string_view value);

// The text after DATA, line by line as the connection reads it (RFC 5321 section 4.5.2): dots unstuffed, the
// end only at <CRLF>.<CRLF>, and what makes the whole message refused once it is read to its real end. A line
// ending in a bare LF, or holding a bare CR, refuses the message, so no variant (\n.\n, \n.\r\n, \r.\r, ...)
// can end it early and smuggle a second message in.
class DataReader {
 public:
  explicit DataReader(std::size_t max_size) : max_size_(max_size) {}
  // One line, its terminator included; `too_long`: the connection dropped the rest of an over-long line, and
  // `line` ends with its terminator. True when this line ended the message.
  bool add(std::string_view line, bool too_long);
  std::string& message() { return message_; }
  // The reply that refuses the message once it ended ("552 5.3.4 ..."), or "" when it may be taken.
  std::string problem() const;

 private:
  std::size_t max_size_;
  std::string message_;
  bool oversized_ = false;
  bool too_long_ = false;
  bool bare_ = false;
  bool after_crlf_ = true;  // the DATA command's own line ended the line before
};

}  // namespace tern::smtp
