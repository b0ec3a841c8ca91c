#include <catch2/catch.hpp>

#include "recipients.hpp"

using tern::fetch::candidate_recipients;
using tern::fetch::received_for;

TEST_CASE("Candidates come from the header only, field by field, and from the topmost Received's for clause") {
  const std::string message =
      "Delivered-To: bob@example.test\r\nReceived: from a\r\n  by b for <alice@example.test>; Mon, 1 Jan 2024\r\n"
      "Received: from c by d for <other@example.test>; Mon, 1 Jan 2024\r\ndelivered-to: carol@example.test\r\n"
      "To: list@lists.example\r\n\r\nDelivered-To: body@example.test\r\n";
  CHECK(received_for(message) == "alice@example.test");
  const auto candidates = candidate_recipients(message, {"X-Original-To", "Received", "Delivered-To", "To"});
  REQUIRE(candidates.size() == 4);
  CHECK(candidates[0].empty());
  CHECK(candidates[1] == std::vector<std::string>{"alice@example.test"});
  CHECK(candidates[2] == std::vector<std::string>{"bob@example.test", "carol@example.test"});
  CHECK(candidates[3] == std::vector<std::string>{"list@lists.example"});
  CHECK(received_for("Received: from a by b; Mon, 1 Jan 2024\r\n\r\n").empty());
  CHECK(received_for("Received: from a by b\r\n\tfor <Folded@Example.test>; Mon, 1 Jan 2024\r\n\r\n") ==
        "folded@example.test");
}
