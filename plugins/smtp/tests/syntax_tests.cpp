#include <catch2/catch.hpp>

#include "smtp_syntax.hpp"

using tern::smtp::parse_path_argument;
using tern::smtp::split_command;
using tern::smtp::valid_mailbox;

TEST_CASE("Commands split into an upper-cased verb and the rest") {
  auto [verb, rest] = split_command("mail FROM:<a@b.test> SIZE=10");
  CHECK(verb == "MAIL");
  CHECK(rest == "FROM:<a@b.test> SIZE=10");
  CHECK(split_command("QUIT").second.empty());
}

TEST_CASE("MAIL FROM takes a path, the null path and parameters") {
  auto path = parse_path_argument("FROM:<Alice@Example.test> SIZE=1000 BODY=8BITMIME", "FROM");
  REQUIRE(path);
  CHECK(path->address == "Alice@Example.test");
  REQUIRE(path->parameters.size() == 2);
  CHECK(path->parameters[0] == std::pair<std::string, std::string>{"SIZE", "1000"});
  CHECK(path->parameters[1].first == "BODY");

  auto null_path = parse_path_argument("from:<>", "FROM");
  REQUIRE(null_path);
  CHECK(null_path->address.empty());
  CHECK(parse_path_argument("FROM: <a@b.test>", "FROM"));
}

TEST_CASE("RCPT TO refuses the null path and broken syntax") {
  CHECK_FALSE(parse_path_argument("TO:<>", "TO"));
  CHECK_FALSE(parse_path_argument("TO:a@b.test", "TO"));
  CHECK_FALSE(parse_path_argument("TO:<a@b.test", "TO"));
  CHECK_FALSE(parse_path_argument("TO:<a@>", "TO"));
  CHECK_FALSE(parse_path_argument("TO:<@b.test>", "TO"));
  CHECK_FALSE(parse_path_argument("TO:<a b@c.test>", "TO"));
  CHECK_FALSE(parse_path_argument("TO:<a@b.test>junk", "TO"));
  CHECK_FALSE(parse_path_argument("FROM:<a@b.test>", "TO"));
}

TEST_CASE("A source route is dropped and the final address kept") {
  auto path = parse_path_argument("TO:<@relay.test,@other.test:user@remote.test>", "TO");
  REQUIRE(path);
  CHECK(path->address == "user@remote.test");
}

TEST_CASE("Quoted local parts may hold an @, and the domain is what follows the last @") {
  auto path = parse_path_argument("TO:<\"user@remote.test\"@local.test>", "TO");
  REQUIRE(path);
  CHECK(path->address == "\"user@remote.test\"@local.test");
  CHECK(valid_mailbox("user@[192.0.2.1]"));
  CHECK_FALSE(valid_mailbox("user@remote@local.test"));
  CHECK_FALSE(valid_mailbox("user..name@local.test"));
  CHECK(valid_mailbox("user%remote.test@local.test"));
}
