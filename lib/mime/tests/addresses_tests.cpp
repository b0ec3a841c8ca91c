#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "addresses.hpp"

using tern::mime::address_specs;
using tern::mime::parse_addresses;

TEST_CASE("Addresses come out of names, quotes, comments and groups, lower-cased") {
  CHECK(address_specs("Carol <Carol@Example.ORG>, \"Doe, John\" <j@x.y>, plain@a.b (a comment, with comma)") ==
        std::vector<std::string>{"carol@example.org", "j@x.y", "plain@a.b"});
  CHECK(address_specs("friends: a@b.c, d@e.f;, last@g.h") == std::vector<std::string>{"a@b.c", "d@e.f", "last@g.h"});
  CHECK(address_specs("undisclosed-recipients:;").empty());
  CHECK(address_specs("not an address, <>").empty());
  CHECK(address_specs("folded\r\n <x@y.z>") == std::vector<std::string>{"x@y.z"});
}

TEST_CASE("An address list is read into IMAP's four parts, a group into its markers and members") {
  const std::vector<tern::mime::Address> found =
      parse_addresses("\"Doe, John\" <@relay.test:john@example.com>, team: a@b.c;");
  REQUIRE(found.size() == 4);
  CHECK(found[0].name == "Doe, John");
  CHECK(found[0].route == "@relay.test");
  CHECK(found[0].mailbox == "john");
  CHECK(found[0].host == "example.com");
  CHECK(found[1].mailbox == "team");
  CHECK_FALSE(found[1].host);
  CHECK(found[2].mailbox == "a");
  CHECK(found[2].host == "b.c");
  CHECK_FALSE(found[3].mailbox);
}

TEST_CASE("The first mailbox is the local part of the first address with a domain") {
  CHECK(tern::mime::first_mailbox("Zed <bob@z.test>") == "bob");
  CHECK(tern::mime::first_mailbox("undisclosed:;") == "");
  CHECK(tern::mime::first_mailbox("\"Someone\" <Alice@y.test>, carol@x.test") == "Alice");
}

TEST_CASE("A bare address's trailing comment is its name; comments inside an address are no part of it") {
  std::vector<tern::mime::Address> found = parse_addresses("user@example.org (Real Name), other@example.org");
  REQUIRE(found.size() == 2);
  CHECK(found[0].name == "Real Name");
  CHECK(found[0].mailbox == "user");
  CHECK(found[0].host == "example.org");
  CHECK_FALSE(found[1].name);

  found = parse_addresses("joe (x) @ (y) example.net (Joe)");
  REQUIRE(found.size() == 1);
  CHECK(found[0].name == "Joe");
  CHECK(found[0].mailbox == "joe");
  CHECK(found[0].host == "example.net");

  found = parse_addresses("Joe (comment) <joe (x) @ (y) example.net>, <user (c)@ (c) domain.org>");
  REQUIRE(found.size() == 2);
  CHECK(found[0].name == "Joe");
  CHECK(found[0].mailbox == "joe");
  CHECK(found[0].host == "example.net");
  CHECK_FALSE(found[1].name);
  CHECK(found[1].mailbox == "user");
  CHECK(found[1].host == "domain.org");
}
