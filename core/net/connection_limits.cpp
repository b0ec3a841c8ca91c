#include "net/connection_limits.hpp"

namespace tern::net {

bool ConnectionLimits::admit(const std::string& client) {
  std::lock_guard lock(mutex_);
  if (total_ >= max_total_) return false;
  std::int64_t& count = per_client_[client];
  if (count >= max_per_client_) return false;
  ++count;
  ++total_;
  return true;
}

void ConnectionLimits::release(const std::string& client) {
  std::lock_guard lock(mutex_);
  auto found = per_client_.find(client);
  if (found == per_client_.end()) return;
  --total_;
  if (--found->second == 0) per_client_.erase(found);
}

std::int64_t ConnectionLimits::total() const {
  std::lock_guard lock(mutex_);
  return total_;
}

}  // namespace tern::net
