#include <catch2/catch.hpp>

#include "net/connection_limits.hpp"

using tern::net::ConnectionLimits;

TEST_CASE("A client over its connection limit is refused while others are still admitted") {
  ConnectionLimits limits(10, 2);
  CHECK(limits.admit("192.0.2.1"));
  CHECK(limits.admit("192.0.2.1"));
  CHECK_FALSE(limits.admit("192.0.2.1"));
  CHECK(limits.admit("192.0.2.2"));
  limits.release("192.0.2.1");
  CHECK(limits.admit("192.0.2.1"));
  CHECK(limits.total() == 3);
}

TEST_CASE("The server-wide connection limit holds across clients") {
  ConnectionLimits limits(2, 5);
  CHECK(limits.admit("192.0.2.1"));
  CHECK(limits.admit("192.0.2.2"));
  CHECK_FALSE(limits.admit("192.0.2.3"));
  limits.release("192.0.2.2");
  CHECK(limits.admit("192.0.2.3"));
}
