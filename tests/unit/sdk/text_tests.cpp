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
