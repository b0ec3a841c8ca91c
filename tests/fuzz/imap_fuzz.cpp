// libFuzzer target for everything the IMAP plugin parses from strangers: a message (header, MIME structure,
// ENVELOPE, BODYSTRUCTURE, part sections, transfer encodings, the fields SORT and THREAD read) and a command
// line (syntax, sequence sets, mailbox names). The input's first byte picks which, so one corpus covers both.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "imap_syntax.hpp"
#include "mime_message.hpp"
#include "threading.hpp"

namespace {

void fuzz_message(std::string_view text) {
  using tern::imap::MimeMessage;
  const MimeMessage message(text);
  message.envelope();
  message.body_structure(false);
  message.body_structure(true);
  for (const char* part : {"", "1", "2", "1.1", "1.2", "2.1", "1.1.1", "3.2.1", "10"}) {
    if (auto section = message.section(part)) {
      MimeMessage::decode(section->encoding, section->text);
      MimeMessage::decode("base64", section->body);
      MimeMessage::decode("quoted-printable", section->body);
    }
  }
  tern::imap::MessageSummary summary;
  summary.subject = tern::imap::header_field(text, "Subject").value_or("");
  summary.date = tern::imap::header_field(text, "Date").value_or("");
  summary.from = tern::imap::first_mailbox(tern::imap::header_field(text, "From").value_or(""));
  summary.message_id = tern::imap::header_field(text, "Message-ID").value_or("");
  summary.references = tern::imap::header_field(text, "References").value_or("");
  summary.in_reply_to = tern::imap::header_field(text, "In-Reply-To").value_or("");
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
