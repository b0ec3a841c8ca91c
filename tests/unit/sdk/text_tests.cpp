#include <catch2/catch.hpp>
#include <string>

#include "tern/sdk/text.hpp"

TEST_CASE("Removing a header field takes its continuation lines and leaves the body alone") {
  const std::string message =
      "Subject: first\r\n  folded\r\nX-Other: kept\r\nsubject: second\r\n\r\nSubject: in the body\r\n";
  std::size_t removed = 0;
  CHECK(tern::sdk::without_header_fields(message, "Subject", removed) ==
        "X-Other: kept\r\n\r\nSubject: in the body\r\n");
  CHECK(removed == 2);
  CHECK(tern::sdk::without_header_fields(message, "Missing", removed) == message);
  CHECK(removed == 0);
  CHECK(tern::sdk::without_header_fields("Subject-Line: x\r\n\r\n", "Subject", removed) == "Subject-Line: x\r\n\r\n");
}

TEST_CASE("rfc5322_date writes a UTC date-time in the RFC 5322 form") {
  CHECK(tern::sdk::rfc5322_date(0) == "Thu, 01 Jan 1970 00:00:00 +0000");
  CHECK(tern::sdk::rfc5322_date(1795375944) == "Sun, 22 Nov 2026 19:32:24 +0000");
}

TEST_CASE("Header fields are found in the header section only, case-insensitively") {
  using tern::sdk::has_header_field;
  const std::string message = "Subject: x\r\nmessage-id: <1@x>\r\n\r\nDate: not a header\r\n";
  CHECK(has_header_field(message, "Message-ID"));
  CHECK(has_header_field(message, "subject"));
  CHECK_FALSE(has_header_field(message, "Date"));
  CHECK_FALSE(has_header_field("Subject-Line: x\r\n\r\n", "Subject"));
}

TEST_CASE("Header fields are counted, and a value is matched without its brackets or case") {
  const std::string message =
      "Received: one\r\nDelivered-To: <Alice@Example.org>\r\nreceived: two\r\n\r\nReceived: body\r\n";
  CHECK(tern::sdk::count_header_fields(message, "Received") == 2);
  CHECK(tern::sdk::has_header_value(message, "delivered-to", "alice@example.org"));
  CHECK_FALSE(tern::sdk::has_header_value(message, "Delivered-To", "bob@example.org"));
  CHECK_FALSE(tern::sdk::has_header_value(message, "Received", "body"));
  CHECK_FALSE(tern::sdk::has_header_value("X: <\r\n\r\n", "X", ""));
}
