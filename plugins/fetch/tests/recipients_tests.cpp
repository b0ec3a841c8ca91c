#include <catch2/catch.hpp>

#include "recipients.hpp"

using tern::fetch::addresses_in;
using tern::fetch::candidate_recipients;
using tern::fetch::field_values;
using tern::fetch::received_for;

TEST_CASE("Addresses come out of names, quotes, comments and groups, lower-cased") {
  CHECK(addresses_in("Carol <Carol@Example.ORG>, \"Doe, John\" <j@x.y>, plain@a.b (a comment, with comma)") ==
        std::vector<std::string>{"carol@example.org", "j@x.y", "plain@a.b"});
  CHECK(addresses_in("friends: a@b.c, d@e.f;, last@g.h") == std::vector<std::string>{"a@b.c", "d@e.f", "last@g.h"});
  CHECK(addresses_in("undisclosed-recipients:;").empty());
  CHECK(addresses_in("not an address, <>").empty());
}

TEST_CASE("Header fields are found case-insensitively, unfolded, in order, and only in the header") {
  const std::string message =
      "Delivered-To: bob@example.test\r\nReceived: from a\r\n  by b for <alice@example.test>; Mon, 1 Jan 2024\r\n"
      "Received: from c by d for <other@example.test>; Mon, 1 Jan 2024\r\ndelivered-to: carol@example.test\r\n"
      "To: list@lists.example\r\n\r\nDelivered-To: body@example.test\r\n";
  CHECK(field_values(message, "Delivered-To") == std::vector<std::string>{"bob@example.test", "carol@example.test"});
  CHECK(received_for(message) == "alice@example.test");
  const auto candidates = candidate_recipients(message, {"X-Original-To", "Received", "Delivered-To", "To"});
  REQUIRE(candidates.size() == 4);
  CHECK(candidates[0].empty());
  CHECK(candidates[1] == std::vector<std::string>{"alice@example.test"});
  CHECK(candidates[2] == std::vector<std::string>{"bob@example.test", "carol@example.test"});
  CHECK(candidates[3] == std::vector<std::string>{"list@lists.example"});
  CHECK(received_for("Received: from a by b; Mon, 1 Jan 2024\r\n\r\n").empty());
}
