// libFuzzer target for what a POP3 client controls, and what a stored message controls in the answer: each
// input line is a command (verb, argument, message numbers, SASL PLAIN and base64 arguments), and the whole
// input is a message sent back as a multi-line response, which must end only at its last line and use CRLF
// line ends throughout.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "pop3_syntax.hpp"
#include "tern/sdk/base64.hpp"
#include "tern/sdk/sasl.hpp"
#include "tern/sdk/text.hpp"

namespace {

void check_response(const std::string& out) {
  // The terminator is the last line, and only it: no message line can end the response early.
  if (!out.ends_with(".\r\n")) __builtin_trap();
  if (out != ".\r\n" && (out.starts_with(".\r\n") || out.find("\r\n.\r\n") != out.size() - 5)) __builtin_trap();
  for (std::size_t at = out.find('\n'); at != std::string::npos; at = out.find('\n', at + 1)) {
    if (at == 0 || out[at - 1] != '\r') __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace tern;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::size_t start = 0;
  while (start < input.size()) {
    std::size_t end = input.find('\n', start);
    end = end == std::string_view::npos ? input.size() : end + 1;
    const pop3::CommandLine command = pop3::split_command(sdk::strip_line_end(input.substr(start, end - start)));
    pop3::parse_number(command.argument);
    const std::size_t space = command.argument.find(' ');
    if (space != std::string_view::npos) pop3::parse_number(command.argument.substr(space + 1));
    sdk::decode_sasl_plain(command.argument);
    sdk::base64_decode(command.argument);
    start = end;
  }
  std::string whole;
  pop3::append_multiline(whole, input, std::nullopt);
  check_response(whole);
  std::string top;
  pop3::append_multiline(top, input, 2);
  check_response(top);
  return 0;
}
