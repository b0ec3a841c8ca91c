// DNS for the server and its plugins (sdk::ServerContext::resolve): c-ares queries made on a small pool of
// threads of their own (a query may wait seconds for an answer that never comes, and the worker pool serves
// every session's store calls), answers cached for their TTL.
#pragma once

#include <utility>  // before Boost.Asio: Boost 1.74's awaitable.hpp needs it with g++ 12

#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "tern/sdk/protocol.hpp"

namespace tern::dns {

class Resolver {
 public:
  // `servers`: "address" or "address:port" entries; empty for the system's resolver configuration. Made on the
  // main thread.
  explicit Resolver(std::vector<std::string> servers);
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // Resumes the caller on its own loop with the answer.
  sdk::Task<sdk::DnsAnswer> resolve(std::string name, sdk::DnsType type);
  // The same, blocking: from the cache, else asked.
  sdk::DnsAnswer lookup(const std::string& name, sdk::DnsType type);

  // Reads a DNS response for records of the wire `type` (ns_t_mx, ns_t_a, ...); the smallest TTL in `ttl`.
  static sdk::DnsAnswer parse(const unsigned char* response, int length, int type, std::uint32_t& ttl);

 private:
  sdk::DnsAnswer query(const std::string& name, int type, std::uint32_t& ttl);

  std::string servers_;  // as c-ares takes them: "a:p,b:p"
  std::mutex mutex_;
  struct Cached {
    sdk::DnsAnswer answer;
    std::chrono::steady_clock::time_point expires;
  };
  std::map<std::pair<std::string, int>, Cached> cache_;
  boost::asio::thread_pool pool_;
};

}  // namespace tern::dns
