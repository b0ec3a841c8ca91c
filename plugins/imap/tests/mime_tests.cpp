#include <catch2/catch.hpp>

#include <random>
#include <string>

#include "mime_message.hpp"

using tern::imap::MimeMessage;

namespace {

const std::string kPlain =
    "Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\n"
    "From: \"Doe, John\" <john.doe@example.com>\r\n"
    "to: alice@example.org, Bob Smith <bob@example.net>,\r\n"
    " friends: carol@example.com, \"Dave\" <dave@example.com>;\r\n"
    "CC: undisclosed-recipients:;\r\n"
    "Subject: Hello\r\n"
    " world\r\n"
    "Message-ID: <1234@example.com>\r\n"
    "\r\n"
    "Line one\r\n"
    "Line two\r\n";

const std::string kAlternative =
    "From: a@example.com\r\n"
    "Subject: alt\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/alternative; boundary=\"b1\"\r\n"
    "\r\n"
    "preamble\r\n"
    "--b1\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "\r\n"
    "Hi\r\n"
    "--b1\r\n"
    "Content-Type: text/html; charset=\"utf-8\"\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "<p>Hi</p>\r\n"
    "--b1--\r\n"
    "epilogue\r\n";

const std::string kMixed =
    "From: sender@example.com\r\n"
    "Content-Type: multipart/mixed; boundary=outer\r\n"
    "\r\n"
    "--outer\r\n"
    "Content-Type: multipart/alternative; boundary=inner\r\n"
    "\r\n"
    "--inner\r\n"
    "\r\n"
    "plain\r\n"
    "--inner\r\n"
    "Content-Type: text/html\r\n"
    "\r\n"
    "<b>html</b>\r\n"
    "--inner--\r\n"
    "--outer \r\n"
    "Content-Type: application/pdf; name=\"report, final.pdf\"\r\n"
    "Content-Disposition: attachment;\r\n"
    " filename=\"report, final.pdf\"\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "Content-ID: <pdf1@x>\r\n"
    "Content-Description: The report\r\n"
    "Content-Language: en, de\r\n"
    "\r\n"
    "JVBERi0=\r\n"
    "--outer--\r\n";

const std::string kForward =
    "From: x@example.com\r\n"
    "Content-Type: multipart/mixed; boundary=m\r\n"
    "\r\n"
    "--m\r\n"
    "Content-Type: text/plain\r\n"
    "\r\n"
    "See attached.\r\n"
    "--m\r\n"
    "Content-Type: message/rfc822\r\n"
    "\r\n"
    "From: inner@example.com\r\n"
    "Subject: inner\r\n"
    "\r\n"
    "Inner body\r\n"
    "--m--\r\n";

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("A plain message's ENVELOPE lists every address, a quoted name with a comma, groups and NIL gaps") {
  const MimeMessage message(kPlain);
  CHECK(message.envelope() ==
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
  CHECK(message.body_structure(true) ==
        "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 20 2 NIL NIL NIL NIL)");
  CHECK(message.body_structure(false) == "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 20 2)");
}

TEST_CASE("Sender and Reply-To default to From, and route addresses and bare names are kept") {
  const MimeMessage message(
      "From: <@relay.example,@hub.example:joe@example.com>\r\n"
      "Reply-To: Team <team@example.com>\r\n"
      "Bcc: postmaster\r\n"
      "\r\n");
  CHECK(message.envelope() ==
        "(NIL NIL ((NIL \"@relay.example,@hub.example\" \"joe\" \"example.com\")) "
        "((NIL \"@relay.example,@hub.example\" \"joe\" \"example.com\")) "
        "((\"Team\" NIL \"team\" \"example.com\")) NIL NIL ((NIL NIL \"postmaster\" \"\")) NIL NIL)");
}

TEST_CASE("A multipart/alternative message's BODYSTRUCTURE lists both parts and the subtype") {
  const MimeMessage message(kAlternative);
  CHECK(message.body_structure(true) ==
        "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 2 1 NIL NIL NIL NIL)"
        "(\"TEXT\" \"HTML\" (\"CHARSET\" \"utf-8\") NIL NIL \"QUOTED-PRINTABLE\" 9 1 NIL NIL NIL NIL) "
        "\"ALTERNATIVE\" (\"BOUNDARY\" \"b1\") NIL NIL NIL)");
  CHECK(message.body_structure(false) ==
        "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 2 1)"
        "(\"TEXT\" \"HTML\" (\"CHARSET\" \"utf-8\") NIL NIL \"QUOTED-PRINTABLE\" 9 1) \"ALTERNATIVE\")");
  CHECK(message.envelope() ==
        "(NIL \"alt\" ((NIL NIL \"a\" \"example.com\")) ((NIL NIL \"a\" \"example.com\")) "
        "((NIL NIL \"a\" \"example.com\")) NIL NIL NIL NIL NIL)");
}

TEST_CASE("A multipart/alternative message's parts are sections 1 and 2, without preamble or epilogue") {
  const MimeMessage message(kAlternative);
  auto first = message.section("1");
  REQUIRE(first);
  CHECK(first->text == "Hi");
  CHECK(first->mime == "Content-Type: text/plain; charset=utf-8\r\n\r\n");
  CHECK_FALSE(first->message);
  auto second = message.section("2");
  REQUIRE(second);
  CHECK(second->text == "<p>Hi</p>");
  CHECK_FALSE(message.section("3"));
  auto whole = message.section("");
  REQUIRE(whole);
  CHECK(whole->text == kAlternative);
  CHECK(whole->header.starts_with("From: a@example.com\r\n"));
  CHECK(whole->header.ends_with("boundary=\"b1\"\r\n\r\n"));
  CHECK(whole->body.starts_with("preamble\r\n"));
}

TEST_CASE("An attachment's BODYSTRUCTURE carries its disposition, filename, id, description and languages") {
  const MimeMessage message(kMixed);
  CHECK(message.body_structure(true) ==
        "(((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 5 1 NIL NIL NIL NIL)"
        "(\"TEXT\" \"HTML\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 11 1 NIL NIL NIL NIL) \"ALTERNATIVE\" "
        "(\"BOUNDARY\" \"inner\") NIL NIL NIL)"
        "(\"APPLICATION\" \"PDF\" (\"NAME\" \"report, final.pdf\") \"<pdf1@x>\" \"The report\" \"BASE64\" 8 NIL "
        "(\"ATTACHMENT\" (\"FILENAME\" \"report, final.pdf\")) (\"en\" \"de\") NIL) "
        "\"MIXED\" (\"BOUNDARY\" \"outer\") NIL NIL NIL)");
}

TEST_CASE("Nested parts are numbered 1.1 and 1.2, and each part's MIME header is its own") {
  const MimeMessage message(kMixed);
  auto alternative = message.section("1");
  REQUIRE(alternative);
  CHECK(alternative->text.starts_with("--inner\r\n"));
  CHECK(alternative->text.ends_with("--inner--"));
  auto plain = message.section("1.1");
  REQUIRE(plain);
  CHECK(plain->text == "plain");
  CHECK(plain->mime == "\r\n");
  auto html = message.section("1.2");
  REQUIRE(html);
  CHECK(html->text == "<b>html</b>");
  CHECK(html->mime == "Content-Type: text/html\r\n\r\n");
  auto attachment = message.section("2");
  REQUIRE(attachment);
  CHECK(attachment->text == "JVBERi0=");
  CHECK(attachment->mime.starts_with("Content-Type: application/pdf;"));
  CHECK(attachment->mime.ends_with("Content-Language: en, de\r\n\r\n"));
  CHECK(attachment->header.empty());
  CHECK_FALSE(message.section("1.3"));
  CHECK_FALSE(message.section("2.1"));
  CHECK_FALSE(message.section("3"));
  CHECK_FALSE(message.section("0"));
  CHECK_FALSE(message.section("1."));
  CHECK_FALSE(message.section(".1"));
  CHECK_FALSE(message.section("x"));
}

TEST_CASE("A message/rfc822 part shows the inner envelope, structure and lines, and its sections") {
  const MimeMessage message(kForward);
  CHECK(message.body_structure(true) ==
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

TEST_CASE("A non-multipart message has only part 1, its body, whose MIME header is the message header") {
  const MimeMessage message(kPlain);
  auto part = message.section("1");
  REQUIRE(part);
  CHECK(part->text == "Line one\r\nLine two\r\n");
  CHECK(part->mime.starts_with("Date: "));
  CHECK(part->mime.ends_with("Message-ID: <1234@example.com>\r\n\r\n"));
  CHECK_FALSE(message.section("2"));
  CHECK_FALSE(message.section("1.1"));
}

TEST_CASE("Parts of a multipart/digest default to message/rfc822") {
  const MimeMessage message(
      "Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: one\r\n\r\nfirst\r\n--d--\r\n");
  CHECK(message.body_structure(false) ==
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
  CHECK(message.body_structure(true) ==
        "(\"IMAGE\" \"PNG\" NIL NIL NIL \"7BIT\" 3 NIL (\"INLINE\" NIL) \"en\" \"http://example.com/a.png\")");
  CHECK(message.body_structure(false) == "(\"IMAGE\" \"PNG\" NIL NIL NIL \"7BIT\" 3)");
}

TEST_CASE("A message without a blank line is all header and an empty body") {
  const MimeMessage message("Subject: no body\r\nFrom: a@example.com");
  CHECK(message.body_structure(true) ==
        "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 0 0 NIL NIL NIL NIL)");
  CHECK(message.envelope().starts_with("(NIL \"no body\" ((NIL NIL \"a\" \"example.com\"))"));
  auto whole = message.section("");
  REQUIRE(whole);
  CHECK(whole->body.empty());
  const MimeMessage empty("");
  CHECK(empty.envelope() == "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
  CHECK(empty.body_structure(false) == "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 0 0)");
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
    CHECK(message.body_structure(false) ==
          "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 0 0) \"MIXED\")");
    CHECK_FALSE(message.section("1"));
  }
  SECTION("a multipart without a boundary parameter is text/plain") {
    const MimeMessage message("Content-Type: multipart/mixed\r\n\r\n--x\r\n\r\nbody\r\n--x--\r\n");
    CHECK(message.body_structure(false).starts_with("(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\")"));
  }
}

TEST_CASE("Malformed Content-Type, encodings and addresses fall back to defaults") {
  for (const char* type : {"text/", "/plain", ";;;=", "text/plain; charset=\"unterminated", "(((", "multi part/x"}) {
    // The message keeps views into its text, which must outlive it.
    const std::string text = std::string("Content-Type: ") + type +
                             "\r\nContent-Transfer-Encoding: (x)\r\nFrom: <<@>>,,;:\r\nTo: \"open\r\n\r\nbody";
    const MimeMessage message(text);
    CHECK(message.body_structure(true).starts_with("(\"TEXT\" \""));
    CHECK(message.envelope().starts_with("(NIL NIL "));
  }
  const MimeMessage weird("Content-Type: TEXT/Plain; Format=flowed; (comment) delsp = yes\r\n\r\nx");
  CHECK(weird.body_structure(false) ==
        "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\" \"FORMAT\" \"flowed\" \"DELSP\" \"yes\") NIL NIL \"7BIT\" 1 1)");
}

TEST_CASE("8-bit header text is sent as a literal") {
  const MimeMessage message(
      "Subject: Gr\xc3\xbc\xc3\x9f"
      "e\r\nFrom: J\xc3\xb6rg <j@example.com>\r\n\r\nx");
  CHECK(message.envelope() ==
        "(NIL {7}\r\nGr\xc3\xbc\xc3\x9f"
        "e (({5}\r\nJ\xc3\xb6rg NIL \"j\" \"example.com\")) "
        "(({5}\r\nJ\xc3\xb6rg NIL \"j\" \"example.com\")) (({5}\r\nJ\xc3\xb6rg NIL \"j\" \"example.com\")) "
        "NIL NIL NIL NIL NIL)");
}

TEST_CASE("Lone LF line ends delimit the header, the parts and the lines") {
  const MimeMessage message(
      "From: a@example.com\nContent-Type: multipart/mixed; boundary=z\n\n--z\n\none\ntwo\n--z\nContent-Type: "
      "text/html\n\n<i>x</i>\n--z--\n");
  CHECK(message.body_structure(false) ==
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
  CHECK(message.envelope().starts_with("(NIL \"at last\" "));
  CHECK(message.body_structure(false).starts_with("(\"TEXT\" \"HTML\" "));
}

TEST_CASE("A 1 MB header line becomes a literal and does not disturb the structure") {
  const std::string subject(1 << 20, 'a');
  const std::string text = "Subject: " + subject + "\r\nContent-Type: " + std::string(1 << 20, 'b') + "\r\n\r\nbody";
  const MimeMessage message(text);
  CHECK(message.envelope().starts_with("(NIL {1048576}\r\naaaa"));
  CHECK(message.body_structure(false) == "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 4 1)");
}

TEST_CASE("A message with 100,000 parts keeps to the part limit") {
  std::string text = "Content-Type: multipart/mixed; boundary=p\r\n\r\n";
  for (int i = 0; i < 100'000; ++i) text += "--p\r\n\r\nx\r\n";
  text += "--p--\r\n";
  const MimeMessage message(text);
  CHECK(message.section(std::to_string(MimeMessage::kMaxParts - 1)));
  CHECK_FALSE(message.section(std::to_string(MimeMessage::kMaxParts)));
  CHECK(count(message.body_structure(true), "\"TEXT\" \"PLAIN\"") == MimeMessage::kMaxParts - 1);
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
  const std::string structure = message.body_structure(true);
  CHECK(count(structure, "\"MIXED\"") == MimeMessage::kMaxDepth);
  CHECK(count(structure, "\"APPLICATION\" \"OCTET-STREAM\"") == 1);

  std::string forwards;
  for (int level = 0; level < 100; ++level) forwards += "Content-Type: message/rfc822\r\n\r\n";
  const std::string nested_text = forwards + "\r\ninnermost";
  const MimeMessage nested(nested_text);
  CHECK(count(nested.body_structure(false), "\"RFC822\"") == MimeMessage::kMaxDepth);
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
    CHECK(message.envelope().front() == '(');
    CHECK(message.body_structure(true).front() == '(');
    for (const char* part : {"", "1", "2", "1.1", "2.1", "1.1.1", "3.2.1"}) {
      if (auto section = message.section(part)) {
        CHECK(section->text.data() >= text.data());
        CHECK(section->text.data() + section->text.size() <= text.data() + text.size());
      }
    }
  }
}

TEST_CASE("Transfer encodings are undone leniently, and an unknown one is refused") {
  CHECK(MimeMessage::decode("Quoted-Printable", "a=3Db =\r\nc=\r\nd  \r\ne=ZZ=4\r\n") == "a=b cd\r\ne=ZZ=4\r\n");
  CHECK(MimeMessage::decode("base64", "aGVs\r\nbG8*\r\n=junk") == "hello");
  CHECK(MimeMessage::decode(" BASE64 (comment)", "AA==") == std::string(1, '\0'));
  CHECK(MimeMessage::decode("", "as is\r\n") == "as is\r\n");
  CHECK(MimeMessage::decode("8bit", "caf\xc3\xa9") == "caf\xc3\xa9");
  CHECK_FALSE(MimeMessage::decode("x-uuencode", "begin 644 x"));
}

TEST_CASE("Leaves name their type, file name, disposition and charset for filters") {
  const std::string message =
      "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
      "--b\r\nContent-Type: text/plain; charset=ISO-8859-1\r\n\r\nhi\r\n"
      "--b\r\nContent-Type: application/pdf; name=\"old.pdf\"\r\nContent-Disposition: attachment; "
      "filename=\"report.pdf\"\r\n\r\n%PDF\r\n"
      "--b\r\nContent-Type: image/png; name=logo.png\r\nContent-Disposition: inline\r\n\r\npng\r\n--b--\r\n";
  const MimeMessage parsed(message);
  const std::vector<MimeMessage::Section> leaves = parsed.leaves();
  REQUIRE(leaves.size() == 3);
  CHECK(leaves[0].type == "TEXT/PLAIN");
  CHECK(leaves[0].charset == "ISO-8859-1");
  CHECK(leaves[0].name.empty());
  CHECK(leaves[0].disposition.empty());
  CHECK(leaves[1].type == "APPLICATION/PDF");
  CHECK(leaves[1].name == "report.pdf");  // the disposition's filename wins over the type's name
  CHECK(leaves[1].disposition == "ATTACHMENT");
  CHECK(leaves[2].name == "logo.png");
  CHECK(leaves[2].disposition == "INLINE");
}
