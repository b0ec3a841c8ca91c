// Mail exchanger lookup (RFC 5321 section 5.1, RFC 7505) through c-ares, with answers cached by their TTL.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace tern::outbound {

struct MailHost {
  std::string name;  // the exchanger's name, or the domain itself when it has no MX
  std::vector<std::string> addresses;
};

struct MxAnswer {
  enum class Outcome {
    found,           // `hosts` in the order to try them
    no_such_domain,  // NXDOMAIN, or no MX and no address: permanent
    null_mx,         // RFC 7505: the domain takes no mail
    temporary,       // the DNS did not answer, or answered SERVFAIL: try later
    loop,            // this server is the domain's best MX: a configuration error, waited out like a temporary one
  };
  Outcome outcome = Outcome::temporary;
  std::vector<MailHost> hosts;
  std::string error;  // why, for the diagnostic, when not found
};

// Thread-safe; every call blocks (run it on the worker pool). Constructed on the main thread.
class DnsResolver {
 public:
  // `servers`: "address:port" entries, or empty for the system's resolver configuration.
  explicit DnsResolver(std::vector<std::string> servers);
  ~DnsResolver();
  DnsResolver(const DnsResolver&) = delete;
  DnsResolver& operator=(const DnsResolver&) = delete;

  // The hosts that take mail for `domain`: MX sorted by preference (equal preferences shuffled), each with its
  // IPv4 then IPv6 addresses; the domain's own addresses when it has no MX. `self` is this server's name: it and
  // the exchangers no better than it are left out.
  MxAnswer mail_hosts(const std::string& domain, const std::string& self);

  // One query's outcome; public for the tests of the parser.
  struct Record {
    int preference = 0;  // MX only
    std::string value;   // MX exchange ("" for the root: a null MX), or an address
  };
  struct Answer {
    enum class Status { ok, no_data, no_domain, failed } status = Status::failed;
    std::vector<Record> records;
    std::string error;
  };
  // Parses a DNS response for records of `type` (ns_t_mx, ns_t_a, ns_t_aaaa); the smallest TTL in `ttl`.
  static Answer parse(const unsigned char* response, int length, int type, std::uint32_t& ttl);

 private:
  Answer lookup(const std::string& name, int type);
  Answer query(const std::string& name, int type, std::uint32_t& ttl);

  std::string servers_;  // as c-ares takes them: "a:p,b:p"
  std::mutex mutex_;
  struct Cached {
    Answer answer;
    std::chrono::steady_clock::time_point expires;
  };
  std::map<std::pair<std::string, int>, Cached> cache_;
};

}  // namespace tern::outbound
