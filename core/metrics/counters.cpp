#include "metrics/counters.hpp"

#include <algorithm>

namespace tern::metrics {

bool Counters::valid_name(std::string_view name) {
  return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

void Counters::add(std::string_view name, std::int64_t delta) {
  if (delta <= 0 || !valid_name(name)) return;
  std::lock_guard lock(mutex_);
  const auto found = values_.find(name);
  if (found != values_.end()) {
    found->second += delta;
  } else if (values_.size() < kMaxCounters) {
    values_.emplace(std::string(name), delta);
  }
}

std::vector<std::pair<std::string, std::int64_t>> Counters::snapshot() const {
  std::lock_guard lock(mutex_);
  return {values_.begin(), values_.end()};
}

}  // namespace tern::metrics
