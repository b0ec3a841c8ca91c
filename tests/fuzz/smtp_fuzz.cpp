// libFuzzer target for what an SMTP client controls: the command split, MAIL and RCPT paths with their
// parameters (xtext, NOTIFY, ORCPT), the DATA reader (dot-unstuffing, the end of the message, bare CR and LF,
// over-long lines and the size limit), and the header scans made on a received message. Each input line is one
// command, and also one line of DATA; the message DATA made is then scanned.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "smtp_syntax.hpp"
#include "tern/sdk/header.hpp"

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
  // The lines as the connection hands them over: terminator included, the rest of an over-long one dropped.
  DataReader reader(4096);
  bool ended = false;
  for (start = 0; start < input.size() && !ended;) {
    std::size_t end = input.find('\n', start);
    end = end == std::string_view::npos ? input.size() : end + 1;
    const std::string_view line = input.substr(start, end - start);
    const bool too_long = line.size() > 1000;
    ended = reader.add(too_long ? line.substr(line.size() - (line.ends_with("\r\n") ? 2 : 1)) : line, too_long);
    start = end;
  }
  const std::string problem = reader.problem();
  if (problem.empty() && reader.message().size() > 4096) __builtin_trap();  // the size limit holds
  const std::string_view message = reader.message();
  tern::sdk::has_header_field(message, "Date");
  tern::sdk::count_header_fields(message, "Received");
  tern::sdk::has_header_value(message, "Delivered-To", "alice@example.org");
  return 0;
}
