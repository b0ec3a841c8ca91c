#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "tern/sdk/header.hpp"

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

TEST_CASE("Header fields are read from the message's header only, the first of each name") {
  const std::string text =
      "Subject: first\r\nsubject: second\r\nFrom: a@b.test\r\n\tfolded\r\n\r\nSubject: in the body\r\nTo: x\r\n";
  CHECK(tern::sdk::header_value(text, "SUBJECT") == "first");
  CHECK(tern::sdk::header_value(text, "from") == "a@b.test\tfolded");
  CHECK_FALSE(tern::sdk::header_value(text, "To"));
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

TEST_CASE("Every value of a field is found, unfolded, and a line that is no field is passed over") {
  const std::string message =
      "Delivered-To: bob@example.test\r\nnot a field\r\nTo: a@b.test,\r\n c@d.test\r\ndelivered-to: carol@example.test"
      "\r\n\r\nDelivered-To: body@example.test\r\n";
  CHECK(tern::sdk::header_values(message, "Delivered-To") ==
        std::vector<std::string>{"bob@example.test", "carol@example.test"});
  CHECK(tern::sdk::header_value(message, "to") == "a@b.test, c@d.test");
  CHECK(tern::sdk::header_values("Subject: lone LF\nX: y\n\nSubject: body\n", "Subject") ==
        std::vector<std::string>{"lone LF"});
}

TEST_CASE("The header ends at the first empty line, and without one all of the message is header") {
  CHECK(tern::sdk::split_header("A: 1\r\n\r\nbody").first == "A: 1\r\n\r\n");
  CHECK(tern::sdk::split_header("A: 1\r\n\r\nbody").second == "body");
  CHECK(tern::sdk::split_header("A: 1\r\nB: 2").second.empty());
}
