// Logins verified lately, remembered for a short while: a client that logs in again and again (phones and
// desktops reconnect all day) then costs one argon2id check per TTL rather than one per login. What it keeps
// and what that trades is in docs/security.md.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace tern::auth {

class LoginCache {
 public:
  using Clock = std::chrono::steady_clock;

  // A `ttl` of zero turns the cache off. At most `capacity` users are remembered.
  LoginCache(std::chrono::seconds ttl, std::size_t capacity = 10000);

  // Whether `password` is the one verified for `user` within the TTL, against this same `stored_hash` (a
  // changed password has another hash, so it is never matched against the old one). Thread-safe.
  bool verified(std::string_view user, std::string_view stored_hash, std::string_view password,
                Clock::time_point now = Clock::now());
  // Remembers a password argon2id has just verified against `stored_hash`. Thread-safe.
  void remember(std::string_view user, std::string_view stored_hash, std::string_view password,
                Clock::time_point now = Clock::now());

 private:
  using Digest = std::array<unsigned char, 32>;
  // HMAC-SHA-256 of the stored hash and the password under a key made at start-up and never stored: the
  // cache holds no password, and nothing it holds can be checked against a guess without that key.
  Digest digest(std::string_view stored_hash, std::string_view password) const;

  struct Entry {
    Digest digest;
    Clock::time_point expires;
  };
  const std::chrono::seconds ttl_;
  const std::size_t capacity_;
  Digest key_{};
  std::mutex mutex_;
  std::unordered_map<std::string, Entry> entries_;  // by lower-cased user
};

}  // namespace tern::auth
