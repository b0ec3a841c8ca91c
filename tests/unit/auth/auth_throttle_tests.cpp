#include <catch2/catch.hpp>

#include "auth/auth_throttle.hpp"

using tern::auth::AuthThrottle;
using namespace std::chrono_literals;

TEST_CASE("Each failed login waits longer, up to eight seconds") {
  AuthThrottle throttle(10, 900s);
  auto now = AuthThrottle::Clock::now();
  CHECK(throttle.record_failure("192.0.2.1", now) == 1000ms);
  CHECK(throttle.record_failure("192.0.2.1", now) == 2000ms);
  CHECK(throttle.record_failure("192.0.2.1", now) == 4000ms);
  CHECK(throttle.record_failure("192.0.2.1", now) == 8000ms);
  CHECK(throttle.record_failure("192.0.2.1", now) == 8000ms);
  CHECK(throttle.record_failure("192.0.2.2", now) == 1000ms);
}

TEST_CASE("An address is blocked at the limit and freed when its failures age out") {
  AuthThrottle throttle(3, 900s);
  auto start = AuthThrottle::Clock::now();
  for (int i = 0; i < 3; ++i) throttle.record_failure("192.0.2.1", start);
  CHECK(throttle.blocked("192.0.2.1", start + 1s));
  CHECK_FALSE(throttle.blocked("192.0.2.9", start + 1s));
  CHECK(throttle.blocked("192.0.2.1", start + 899s));
  CHECK_FALSE(throttle.blocked("192.0.2.1", start + 900s));
  CHECK(throttle.record_failure("192.0.2.1", start + 901s) == 1000ms);
}
