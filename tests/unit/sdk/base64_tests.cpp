#include <catch2/catch.hpp>

#include "tern/sdk/base64.hpp"

using tern::sdk::base64_decode;
using tern::sdk::base64_encode;

TEST_CASE("Base64 round-trips SASL PLAIN answers with NULs") {
  std::string plain("\0user@example.test\0secret", 25);
  CHECK(base64_encode(plain) == "AHVzZXJAZXhhbXBsZS50ZXN0AHNlY3JldA==");
  CHECK(base64_decode(base64_encode(plain)) == plain);
  CHECK(base64_encode("Username:") == "VXNlcm5hbWU6");
  CHECK(base64_decode("") == std::string());
}

TEST_CASE("Malformed base64 is refused") {
  CHECK_FALSE(base64_decode("abc"));
  CHECK_FALSE(base64_decode("ab=c"));
  CHECK_FALSE(base64_decode("a==="));
  CHECK_FALSE(base64_decode("ab!d"));
  CHECK_FALSE(base64_decode("ab==abcd"));
}
