#include "auth/auth_throttle.hpp"

#include <algorithm>

namespace tern::auth {
namespace {

// Addresses are swept for expired failures once the table holds this many, so it cannot grow without bound.
constexpr std::size_t kSweepThreshold = 4096;

}  // namespace

void AuthThrottle::forget_expired(std::deque<Clock::time_point>& failures, Clock::time_point now) const {
  while (!failures.empty() && now - failures.front() >= window_) failures.pop_front();
}

bool AuthThrottle::blocked(const std::string& client, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  auto found = failures_.find(client);
  if (found == failures_.end()) return false;
  forget_expired(found->second, now);
  if (found->second.empty()) {
    failures_.erase(found);
    return false;
  }
  return static_cast<std::int64_t>(found->second.size()) >= max_failures_;
}

std::chrono::milliseconds AuthThrottle::record_failure(const std::string& client, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  if (failures_.size() >= kSweepThreshold) {
    for (auto it = failures_.begin(); it != failures_.end();) {
      forget_expired(it->second, now);
      it = it->second.empty() ? failures_.erase(it) : std::next(it);
    }
  }
  auto& failures = failures_[client];
  forget_expired(failures, now);
  failures.push_back(now);
  const auto shift = std::min<std::size_t>(failures.size() - 1, 3);
  return std::chrono::milliseconds(1000 << shift);
}

}  // namespace tern::auth
