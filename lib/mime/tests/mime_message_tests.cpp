#include <catch2/catch.hpp>

#include <random>
#include <string>

#include "mime_message.hpp"
#include "sample_messages.hpp"
#include "tern/sdk/header.hpp"

using tern::mime::MimeMessage;
using namespace tern::mime::samples;

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
