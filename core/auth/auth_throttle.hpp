// Failed logins per client address: a growing pause before each answer, then a block until they age out.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>

namespace tern::auth {

class AuthThrottle {
 public:
  using Clock = std::chrono::steady_clock;

  // `max_failures` within `window` block the address; each failure is kept for `window`.
  AuthThrottle(std::int64_t max_failures, std::chrono::seconds window) : max_failures_(max_failures), window_(window) {}

  // Whether the address has reached the limit: its logins are refused without checking the password.
  bool blocked(const std::string& client, Clock::time_point now = Clock::now());
  // Counts a failure and returns how long to wait before answering it: one second, doubling with each recent
  // failure, at most eight.
  std::chrono::milliseconds record_failure(const std::string& client, Clock::time_point now = Clock::now());

 private:
  void forget_expired(std::deque<Clock::time_point>& failures, Clock::time_point now) const;

  std::mutex mutex_;
  std::int64_t max_failures_;
  std::chrono::seconds window_;
  std::map<std::string, std::deque<Clock::time_point>, std::less<>> failures_;
};

}  // namespace tern::auth
