// Connection counts, in all and per client address, checked when a connection is accepted.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace tern::net {

class ConnectionLimits {
 public:
  ConnectionLimits(std::int64_t max_total, std::int64_t max_per_client)
      : max_total_(max_total), max_per_client_(max_per_client) {}

  // Counts the connection in and returns true, or returns false (and counts nothing) when a limit is reached.
  bool admit(const std::string& client);
  void release(const std::string& client);
  std::int64_t total() const;

 private:
  mutable std::mutex mutex_;
  std::int64_t max_total_;
  std::int64_t max_per_client_;
  std::int64_t total_ = 0;
  std::map<std::string, std::int64_t, std::less<>> per_client_;
};

}  // namespace tern::net
