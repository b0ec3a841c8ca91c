#include <catch2/catch.hpp>

#include <string>

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

TEST_CASE("A domain name is labels of letters, digits and hyphens; UTF-8 only when asked for") {
  using tern::sdk::is_domain_name;
  CHECK(is_domain_name("mail.example-one.org"));
  CHECK_FALSE(is_domain_name("example..org"));
  CHECK_FALSE(is_domain_name(".example.org"));
  CHECK_FALSE(is_domain_name("example.org."));
  CHECK_FALSE(is_domain_name("exa_mple.org"));
  CHECK_FALSE(is_domain_name(std::string(64, 'a') + ".org"));
  CHECK_FALSE(is_domain_name(std::string(250, 'a').insert(63, ".").insert(127, ".").insert(191, ".") + ".org"));
  CHECK_FALSE(is_domain_name("bücher.example"));
  CHECK(is_domain_name("bücher.example", true));
}
