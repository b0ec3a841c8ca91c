// libFuzzer target for everything the IMAP plugin parses from strangers: a message (header, MIME structure,
// ENVELOPE, BODYSTRUCTURE, part sections, transfer encodings, the fields SORT and THREAD read) and a command
// line (syntax, sequence sets, mailbox names). The input's first byte picks which, so one corpus covers both.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "addresses.hpp"
#include "imap_structure.hpp"
#include "imap_syntax.hpp"
#include "tern/sdk/header.hpp"
#include "threading.hpp"

namespace {

void fuzz_message(std::string_view text) {
  using tern::mime::MimeMessage;
  const MimeMessage message(text);
  tern::imap::envelope(message);
  tern::imap::body_structure(message, false);
  tern::imap::body_structure(message, true);
  message.leaves();
  for (const char* part : {"", "1", "2", "1.1", "1.2", "2.1", "1.1.1", "3.2.1", "10"}) {
    if (auto section = message.section(part)) {
      MimeMessage::decode(section->encoding, section->text);
      MimeMessage::decode("base64", section->body);
      MimeMessage::decode("quoted-printable", section->body);
    }
  }
  tern::imap::MessageSummary summary;
  summary.subject = tern::sdk::header_value(text, "Subject").value_or("");
  summary.date = tern::sdk::header_value(text, "Date").value_or("");
  summary.from = tern::mime::first_mailbox(tern::sdk::header_value(text, "From").value_or(""));
  summary.message_id = tern::sdk::header_value(text, "Message-ID").value_or("");
  summary.references = tern::sdk::header_value(text, "References").value_or("");
  summary.in_reply_to = tern::sdk::header_value(text, "In-Reply-To").value_or("");
  tern::imap::base_subject(summary.subject);
  tern::imap::parse_sent_date(summary.date);
  std::vector<tern::imap::MessageSummary> messages{summary, summary};
  messages[1].number = 2;
  tern::imap::thread_messages(messages, tern::imap::ThreadAlgorithm::references);
  tern::imap::thread_messages(messages, tern::imap::ThreadAlgorithm::ordered_subject);
}

void fuzz_command(std::string_view text) {
  std::string tag;
  if (auto command = tern::imap::parse_command(text, tag)) {
    for (const tern::imap::Value& argument : command->arguments) {
      tern::imap::parse_sequence_set(argument.text, 1000);
      tern::imap::parse_sort_criteria(argument);
      if (auto name = tern::imap::utf7_to_utf8(argument.text)) tern::imap::utf8_to_utf7(*name);
    }
  }
  tern::imap::trailing_literal(text);
  tern::imap::utf8_to_utf7(text);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 0) {
    fuzz_message(text);
  } else {
    fuzz_command(text);
  }
  return 0;
}
