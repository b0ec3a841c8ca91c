// libFuzzer target for the SMTP command syntax a client controls: the command split, MAIL and RCPT paths with
// their parameters (xtext, NOTIFY, ORCPT), and the header scans made on a received message. Each input line is
// one command; the whole input is also scanned as a message.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "smtp_syntax.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace tern::smtp;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::size_t start = 0;
  while (start <= input.size()) {
    std::size_t end = input.find('\n', start);
    if (end == std::string_view::npos) end = input.size();
    const std::string_view line = input.substr(start, end - start);
    const auto [verb, argument] = split_command(line);
    for (std::string_view keyword : {"FROM", "TO"}) {
      if (const auto path = parse_path_argument(argument, keyword)) {
        valid_mailbox(path->address);
        for (const auto& [name, value] : path->parameters) {
          decode_xtext(value);
          parse_notify(value);
          parse_orcpt(value);
        }
      }
    }
    decode_xtext(argument);
    start = end + 1;
  }
  has_header_field(input, "Date");
  count_header_fields(input, "Received");
  has_header_value(input, "Delivered-To", "alice@example.org");
  return 0;
}
