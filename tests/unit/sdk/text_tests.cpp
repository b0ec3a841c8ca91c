#include <catch2/catch.hpp>
#include <string>

#include "tern/sdk/text.hpp"

TEST_CASE("rfc5322_date writes a UTC date-time in the RFC 5322 form") {
  CHECK(tern::sdk::rfc5322_date(0) == "Thu, 01 Jan 1970 00:00:00 +0000");
  CHECK(tern::sdk::rfc5322_date(1795375944) == "Sun, 22 Nov 2026 19:32:24 +0000");
}
