#include <catch2/catch.hpp>

#include "auth/login_cache.hpp"

using tern::auth::LoginCache;
using namespace std::chrono_literals;

TEST_CASE("A verified login is remembered for its TTL, for that password and that stored hash only") {
  LoginCache cache(300s);
  const auto now = LoginCache::Clock::now();
  CHECK_FALSE(cache.verified("alice@example.test", "$argon2id$one", "secret", now));
  cache.remember("alice@example.test", "$argon2id$one", "secret", now);
  CHECK(cache.verified("alice@example.test", "$argon2id$one", "secret", now + 299s));
  CHECK(cache.verified("ALICE@example.test", "$argon2id$one", "secret", now));
  // Another password, another user, a changed password (a new stored hash), or the TTL passed: argon2id again.
  CHECK_FALSE(cache.verified("alice@example.test", "$argon2id$one", "secreT", now));
  CHECK_FALSE(cache.verified("bob@example.test", "$argon2id$one", "secret", now));
  CHECK_FALSE(cache.verified("alice@example.test", "$argon2id$two", "secret", now));
  CHECK_FALSE(cache.verified("alice@example.test", "$argon2id$one", "secret", now + 300s));
  // The hash and the password are kept apart: moving the boundary between them is not the same login.
  CHECK_FALSE(cache.verified("alice@example.test", "$argon2id$ones", "ecret", now));
}

TEST_CASE("A TTL of zero remembers nothing, and a full cache still answers") {
  LoginCache off(0s);
  const auto now = LoginCache::Clock::now();
  off.remember("alice@example.test", "$h", "secret", now);
  CHECK_FALSE(off.verified("alice@example.test", "$h", "secret", now));

  LoginCache small(60s, 2);
  small.remember("a@example.test", "$h", "1", now);
  small.remember("b@example.test", "$h", "2", now);
  small.remember("c@example.test", "$h", "3", now);
  CHECK(small.verified("c@example.test", "$h", "3", now));
}
