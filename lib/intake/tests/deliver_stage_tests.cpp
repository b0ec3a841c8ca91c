#include <catch2/catch.hpp>
#include <stdexcept>
#include <string>

#include "deliver_stage.hpp"

namespace {

struct Copy {
  tern::sdk::ClientInfo client;
  tern::sdk::Envelope envelope;
  std::string message = "Subject: hi\r\n\r\nbody\r\n";
  tern::intake::DeliverContext context{client, envelope, "alice@example.org", message};
};

}  // namespace

TEST_CASE("A deliver hook sees the user and the stored message, and cannot add header fields") {
  Copy copy;
  CHECK(copy.context.stage() == tern::sdk::Stage::deliver);
  CHECK(copy.context.recipient() == "alice@example.org");
  CHECK(copy.context.message() == copy.message);
  CHECK(copy.context.envelope() == &copy.envelope);
  CHECK_THROWS_AS(copy.context.add_header("X-Tag", "1"), std::logic_error);
  CHECK_THROWS_AS(copy.context.set_sender("bob@example.org"), std::logic_error);
}

TEST_CASE("Flags are kept once each whatever their case, \\Recent never, and a non-flag is refused") {
  Copy copy;
  copy.context.add_flag("\\Flagged");
  copy.context.add_flag("$Club");
  copy.context.add_flag("\\flagged");
  copy.context.add_flag("\\Recent");
  CHECK(copy.context.flags() == "\\Flagged $Club");
  CHECK_THROWS_AS(copy.context.add_flag("two words"), std::invalid_argument);
  CHECK_THROWS_AS(copy.context.add_flag("(paren"), std::invalid_argument);
  CHECK_THROWS_AS(copy.context.add_flag("\\"), std::invalid_argument);
  CHECK(copy.context.flags() == "\\Flagged $Club");
}

TEST_CASE("A redirect takes a plain address only") {
  Copy copy;
  copy.context.redirect("bob@example.org");
  CHECK_THROWS_AS(copy.context.redirect("bob"), std::invalid_argument);
  CHECK_THROWS_AS(copy.context.redirect("<bob@example.org>"), std::invalid_argument);
  CHECK_THROWS_AS(copy.context.redirect("a@b, c@d"), std::invalid_argument);
  CHECK_THROWS_AS(copy.context.redirect("@example.org"), std::invalid_argument);
  CHECK(copy.context.redirects() == std::vector<std::string>{"bob@example.org"});
}
