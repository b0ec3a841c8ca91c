#include <catch2/catch.hpp>

#include <random>
#include <string>

#include "imap_structure.hpp"
#include "sample_messages.hpp"
#include "tern/sdk/header.hpp"

using tern::mime::MimeMessage;
using namespace tern::mime::samples;

TEST_CASE("A plain message's ENVELOPE lists every address, a quoted name with a comma, groups and NIL gaps") {
  const MimeMessage message(kPlain);
  CHECK(tern::imap::envelope(message) ==
        "(\"Mon, 7 Feb 1994 21:52:25 -0800 (PST)\" \"Hello world\" "
        "((\"Doe, John\" NIL \"john.doe\" \"example.com\")) ((\"Doe, John\" NIL \"john.doe\" \"example.com\")) "
        "((\"Doe, John\" NIL \"john.doe\" \"example.com\")) "
        "((NIL NIL \"alice\" \"example.org\")(\"Bob Smith\" NIL \"bob\" \"example.net\")"
        "(NIL NIL \"friends\" NIL)(NIL NIL \"carol\" \"example.com\")(\"Dave\" NIL \"dave\" \"example.com\")"
        "(NIL NIL NIL NIL)) "
        "((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) NIL NIL \"<1234@example.com>\")");
}

TEST_CASE("A plain message's BODYSTRUCTURE is text/plain in us-ascii with its size and line count") {
  const MimeMessage message(kPlain);
  CHECK(tern::imap::body_structure(message, true) ==
        "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 20 2 NIL NIL NIL NIL)");
  CHECK(tern::imap::body_structure(message, false) ==
        "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 20 2)");
}

TEST_CASE("Sender and Reply-To default to From, and route addresses and bare names are kept") {
  const MimeMessage message(
      "From: <@relay.example,@hub.example:joe@example.com>\r\n"
      "Reply-To: Team <team@example.com>\r\n"
      "Bcc: postmaster\r\n"
      "\r\n");
  CHECK(tern::imap::envelope(message) ==
        "(NIL NIL ((NIL \"@relay.example,@hub.example\" \"joe\" \"example.com\")) "
        "((NIL \"@relay.example,@hub.example\" \"joe\" \"example.com\")) "
        "((\"Team\" NIL \"team\" \"example.com\")) NIL NIL ((NIL NIL \"postmaster\" \"\")) NIL NIL)");
}

TEST_CASE("A multipart/alternative message's BODYSTRUCTURE lists both parts and the subtype") {
  const MimeMessage message(kAlternative);
  CHECK(tern::imap::body_structure(message, true) ==
        "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 2 1 NIL NIL NIL NIL)"
        "(\"TEXT\" \"HTML\" (\"CHARSET\" \"utf-8\") NIL NIL \"QUOTED-PRINTABLE\" 9 1 NIL NIL NIL NIL) "
        "\"ALTERNATIVE\" (\"BOUNDARY\" \"b1\") NIL NIL NIL)");
  CHECK(tern::imap::body_structure(message, false) ==
        "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 2 1)"
        "(\"TEXT\" \"HTML\" (\"CHARSET\" \"utf-8\") NIL NIL \"QUOTED-PRINTABLE\" 9 1) \"ALTERNATIVE\")");
  CHECK(tern::imap::envelope(message) ==
        "(NIL \"alt\" ((NIL NIL \"a\" \"example.com\")) ((NIL NIL \"a\" \"example.com\")) "
        "((NIL NIL \"a\" \"example.com\")) NIL NIL NIL NIL NIL)");
}

TEST_CASE("An attachment's BODYSTRUCTURE carries its disposition, filename, id, description and languages") {
  const MimeMessage message(kMixed);
  CHECK(tern::imap::body_structure(message, true) ==
        "(((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 5 1 NIL NIL NIL NIL)"
        "(\"TEXT\" \"HTML\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 11 1 NIL NIL NIL NIL) \"ALTERNATIVE\" "
        "(\"BOUNDARY\" \"inner\") NIL NIL NIL)"
        "(\"APPLICATION\" \"PDF\" (\"NAME\" \"report, final.pdf\") \"<pdf1@x>\" \"The report\" \"BASE64\" 8 NIL "
        "(\"ATTACHMENT\" (\"FILENAME\" \"report, final.pdf\")) (\"en\" \"de\") NIL) "
        "\"MIXED\" (\"BOUNDARY\" \"outer\") NIL NIL NIL)");
}

TEST_CASE("A message/rfc822 part shows the inner envelope, structure and lines, and its sections") {
  const MimeMessage message(kForward);
  CHECK(tern::imap::body_structure(message, true) ==
        "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 13 1 NIL NIL NIL NIL)"
        "(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 53 "
        "(NIL \"inner\" ((NIL NIL \"inner\" \"example.com\")) ((NIL NIL \"inner\" \"example.com\")) "
        "((NIL NIL \"inner\" \"example.com\")) NIL NIL NIL NIL NIL) "
        "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 10 1 NIL NIL NIL NIL) 4 NIL NIL NIL NIL) "
        "\"MIXED\" (\"BOUNDARY\" \"m\") NIL NIL NIL)");
  auto forwarded = message.section("2");
  REQUIRE(forwarded);
  CHECK(forwarded->text == "From: inner@example.com\r\nSubject: inner\r\n\r\nInner body");
  CHECK(forwarded->mime == "Content-Type: message/rfc822\r\n\r\n");
  CHECK(forwarded->message);
  CHECK(forwarded->header == "From: inner@example.com\r\nSubject: inner\r\n\r\n");
  CHECK(forwarded->body == "Inner body");
  auto inner = message.section("2.1");
  REQUIRE(inner);
  CHECK(inner->text == "Inner body");
  CHECK(inner->mime == "From: inner@example.com\r\nSubject: inner\r\n\r\n");
  CHECK_FALSE(message.section("2.2"));
}

TEST_CASE("Parts of a multipart/digest default to message/rfc822") {
  const MimeMessage message(
      "Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: one\r\n\r\nfirst\r\n--d--\r\n");
  CHECK(tern::imap::body_structure(message, false) ==
        "((\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 21 (NIL \"one\" NIL NIL NIL NIL NIL NIL NIL NIL) "
        "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 5 1) 3) \"DIGEST\")");
  auto inner = message.section("1.1");
  REQUIRE(inner);
  CHECK(inner->text == "first");
}

TEST_CASE("A single-part message's extension data has an inline disposition, one language and a location") {
  const MimeMessage message(
      "Content-Type: image/png\r\nContent-Disposition: inline\r\nContent-Location: http://example.com/a.png\r\n"
      "Content-Language: en\r\n\r\nPNG");
  CHECK(tern::imap::body_structure(message, true) ==
        "(\"IMAGE\" \"PNG\" NIL NIL NIL \"7BIT\" 3 NIL (\"INLINE\" NIL) \"en\" \"http://example.com/a.png\")");
  CHECK(tern::imap::body_structure(message, false) == "(\"IMAGE\" \"PNG\" NIL NIL NIL \"7BIT\" 3)");
}

TEST_CASE("A message without a blank line is all header and an empty body") {
  const MimeMessage message("Subject: no body\r\nFrom: a@example.com");
  CHECK(tern::imap::body_structure(message, true) ==
        "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 0 0 NIL NIL NIL NIL)");
  CHECK(tern::imap::envelope(message).starts_with("(NIL \"no body\" ((NIL NIL \"a\" \"example.com\"))"));
  auto whole = message.section("");
  REQUIRE(whole);
  CHECK(whole->body.empty());
  const MimeMessage empty("");
  CHECK(tern::imap::envelope(empty) == "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
  CHECK(tern::imap::body_structure(empty, false) ==
        "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 0 0)");
}

TEST_CASE("Unbalanced or missing boundaries still give a structure") {
  SECTION("a part that never closes runs to the end of its parent") {
    const MimeMessage message(
        "Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\nContent-Type: multipart/alternative; "
        "boundary=i\r\n\r\n--i\r\n\r\nunclosed\r\n--o\r\n\r\nsecond\r\n");
    auto unclosed = message.section("1.1");
    REQUIRE(unclosed);
    CHECK(unclosed->text == "unclosed");
    auto second = message.section("2");
    REQUIRE(second);
    CHECK(second->text == "second\r\n");
  }
  SECTION("a multipart whose boundary never appears shows one empty part") {
    const MimeMessage message("Content-Type: multipart/mixed; boundary=nowhere\r\n\r\n--elsewhere\r\n");
    CHECK(tern::imap::body_structure(message, false) ==
          "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 0 0) \"MIXED\")");
    CHECK_FALSE(message.section("1"));
  }
  SECTION("a multipart without a boundary parameter is text/plain") {
    const MimeMessage message("Content-Type: multipart/mixed\r\n\r\n--x\r\n\r\nbody\r\n--x--\r\n");
    CHECK(tern::imap::body_structure(message, false).starts_with("(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\")"));
  }
}

TEST_CASE("Malformed Content-Type, encodings and addresses fall back to defaults") {
  for (const char* type : {"text/", "/plain", ";;;=", "text/plain; charset=\"unterminated", "(((", "multi part/x"}) {
    // The message keeps views into its text, which must outlive it.
    const std::string text = std::string("Content-Type: ") + type +
                             "\r\nContent-Transfer-Encoding: (x)\r\nFrom: <<@>>,,;:\r\nTo: \"open\r\n\r\nbody";
    const MimeMessage message(text);
    CHECK(tern::imap::body_structure(message, true).starts_with("(\"TEXT\" \""));
    CHECK(tern::imap::envelope(message).starts_with("(NIL NIL "));
  }
  const MimeMessage weird("Content-Type: TEXT/Plain; Format=flowed; (comment) delsp = yes\r\n\r\nx");
  CHECK(tern::imap::body_structure(weird, false) ==
        "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\" \"FORMAT\" \"flowed\" \"DELSP\" \"yes\") NIL NIL \"7BIT\" 1 1)");
}

TEST_CASE("8-bit header text is sent as a literal") {
  const MimeMessage message(
      "Subject: Gr\xc3\xbc\xc3\x9f"
      "e\r\nFrom: J\xc3\xb6rg <j@example.com>\r\n\r\nx");
  CHECK(tern::imap::envelope(message) ==
        "(NIL {7}\r\nGr\xc3\xbc\xc3\x9f"
        "e (({5}\r\nJ\xc3\xb6rg NIL \"j\" \"example.com\")) "
        "(({5}\r\nJ\xc3\xb6rg NIL \"j\" \"example.com\")) (({5}\r\nJ\xc3\xb6rg NIL \"j\" \"example.com\")) "
        "NIL NIL NIL NIL NIL)");
}

TEST_CASE("Lone LF line ends delimit the header, the parts and the lines") {
  const MimeMessage message(
      "From: a@example.com\nContent-Type: multipart/mixed; boundary=z\n\n--z\n\none\ntwo\n--z\nContent-Type: "
      "text/html\n\n<i>x</i>\n--z--\n");
  CHECK(tern::imap::body_structure(message, false) ==
        "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 7 2)"
        "(\"TEXT\" \"HTML\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 8 1) \"MIXED\")");
  auto first = message.section("1");
  REQUIRE(first);
  CHECK(first->text == "one\ntwo");
  CHECK(first->mime == "\n");
}

TEST_CASE("A million header lines are parsed in one pass and the fields after them still found") {
  std::string text;
  text.reserve(23'000'000);
  for (int i = 0; i < 1'000'000; ++i) text += "X-Filler: some value\r\n";
  text += "Subject: at last\r\nContent-Type: text/html\r\n\r\nbody";
  const MimeMessage message(text);
  CHECK(tern::imap::envelope(message).starts_with("(NIL \"at last\" "));
  CHECK(tern::imap::body_structure(message, false).starts_with("(\"TEXT\" \"HTML\" "));
}

TEST_CASE("A 1 MB header line becomes a literal and does not disturb the structure") {
  const std::string subject(1 << 20, 'a');
  const std::string text = "Subject: " + subject + "\r\nContent-Type: " + std::string(1 << 20, 'b') + "\r\n\r\nbody";
  const MimeMessage message(text);
  CHECK(tern::imap::envelope(message).starts_with("(NIL {1048576}\r\naaaa"));
  CHECK(tern::imap::body_structure(message, false) ==
        "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 4 1)");
}

TEST_CASE("A message with 100,000 parts keeps to the part limit") {
  std::string text = "Content-Type: multipart/mixed; boundary=p\r\n\r\n";
  for (int i = 0; i < 100'000; ++i) text += "--p\r\n\r\nx\r\n";
  text += "--p--\r\n";
  const MimeMessage message(text);
  CHECK(message.section(std::to_string(MimeMessage::kMaxParts - 1)));
  CHECK_FALSE(message.section(std::to_string(MimeMessage::kMaxParts)));
  CHECK(count(tern::imap::body_structure(message, true), "\"TEXT\" \"PLAIN\"") == MimeMessage::kMaxParts - 1);
}

TEST_CASE("Nesting beyond the depth limit is an opaque application/octet-stream body") {
  std::string text;
  for (int level = 0; level < 100; ++level) {
    text += "Content-Type: multipart/mixed; boundary=b" + std::to_string(level) + "\r\n\r\n--b" +
            std::to_string(level) + "\r\n";
  }
  text += "\r\ninnermost\r\n";
  const MimeMessage message(text);
  std::string path = "1";
  for (int level = 1; level < MimeMessage::kMaxDepth; ++level) path += ".1";
  REQUIRE(message.section(path));
  CHECK_FALSE(message.section(path + ".1"));
  const std::string structure = tern::imap::body_structure(message, true);
  CHECK(count(structure, "\"MIXED\"") == MimeMessage::kMaxDepth);
  CHECK(count(structure, "\"APPLICATION\" \"OCTET-STREAM\"") == 1);

  std::string forwards;
  for (int level = 0; level < 100; ++level) forwards += "Content-Type: message/rfc822\r\n\r\n";
  const std::string nested_text = forwards + "\r\ninnermost";
  const MimeMessage nested(nested_text);
  CHECK(count(tern::imap::body_structure(nested, false), "\"RFC822\"") == MimeMessage::kMaxDepth);
}

TEST_CASE("Random mixes of MIME syntax never crash and always give a structure") {
  const std::string_view pieces[] = {"--b",
                                     "--b--",
                                     "\r\n",
                                     "\n",
                                     "\r",
                                     " ",
                                     "Content-Type: multipart/mixed; boundary=b",
                                     "Content-Type: message/rfc822",
                                     "From: ",
                                     "<a@b>",
                                     "\"q,\\\"",
                                     "(c(",
                                     ":",
                                     ";",
                                     "@",
                                     ",",
                                     "\xff",
                                     std::string_view("\0", 1),
                                     "\t",
                                     "x"};
  std::mt19937 random(42);
  std::uniform_int_distribution<std::size_t> pick(0, std::size(pieces) - 1);
  for (int round = 0; round < 2000; ++round) {
    std::string text;
    const std::size_t length = random() % 200;
    for (std::size_t i = 0; i < length; ++i) text += pieces[pick(random)];
    const MimeMessage message(text);
    CHECK(tern::imap::envelope(message).front() == '(');
    CHECK(tern::imap::body_structure(message, true).front() == '(');
    for (const char* part : {"", "1", "2", "1.1", "2.1", "1.1.1", "3.2.1"}) {
      if (auto section = message.section(part)) {
        CHECK(section->text.data() >= text.data());
        CHECK(section->text.data() + section->text.size() <= text.data() + text.size());
      }
    }
  }
}
