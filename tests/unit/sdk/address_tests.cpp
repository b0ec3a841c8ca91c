#include <catch2/catch.hpp>

#include "tern/sdk/address.hpp"

TEST_CASE("An address's domain is what follows its last @, lower-cased; its local part what precedes it") {
  using tern::sdk::domain_of;
  using tern::sdk::local_part_of;
  CHECK(domain_of("Alice@Example.ORG") == "example.org");
  CHECK(domain_of("\"a@b\"@example.org") == "example.org");
  CHECK(domain_of("postmaster") == "");
  CHECK(local_part_of("Alice@Example.ORG") == "Alice");
  CHECK(local_part_of("\"a@b\"@example.org") == "\"a@b\"");
  CHECK(local_part_of("postmaster") == "postmaster");
}

TEST_CASE("An address a hook hands in must be a plain local@domain") {
  using tern::sdk::is_address;
  CHECK(is_address("odd.name+tag@example.org"));
  CHECK_FALSE(is_address("\"odd name\"@example.org"));
  CHECK_FALSE(is_address("<bob@example.org>"));
  CHECK_FALSE(is_address("a@b, c@d"));
  CHECK_FALSE(is_address("@example.org"));
  CHECK_FALSE(is_address("bob@"));
  CHECK_FALSE(is_address("bob"));
}
