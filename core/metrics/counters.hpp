// The server's counters (sdk::ServerContext::count): monotonic, by name, for the process's life, shared by
// every generation and session. Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tern::metrics {

class Counters {
 public:
  // Adds `delta` (ignored unless positive) to `name`, made when first counted. A name outside [a-z0-9_], empty
  // or over 64 characters is ignored; so is a new name once kMaxCounters exist, so that a script counting
  // by, say, the sender's address cannot grow the server without bound.
  void add(std::string_view name, std::int64_t delta);
  std::vector<std::pair<std::string, std::int64_t>> snapshot() const;  // by name

  static constexpr std::size_t kMaxCounters = 1000;
  static bool valid_name(std::string_view name);

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::int64_t, std::less<>> values_;
};

}  // namespace tern::metrics
