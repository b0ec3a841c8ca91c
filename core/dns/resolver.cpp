#include "dns/resolver.hpp"

#include <fmt/format.h>

#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <poll.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <optional>

#include "tern/sdk/text.hpp"

namespace tern::dns {
namespace {

// How long an answer that says "nothing here" is kept: such answers carry no TTL of their own in the answer
// section, and a domain fixing its DNS should not wait long.
constexpr std::uint32_t kNegativeTtl = 60;
constexpr std::uint32_t kMaxTtl = 24 * 3600;

std::uint16_t read16(const unsigned char* p) {
  return static_cast<std::uint16_t>(p[0] << 8 | p[1]);
}
std::uint32_t read32(const unsigned char* p) {
  return static_cast<std::uint32_t>(p[0]) << 24 | static_cast<std::uint32_t>(p[1]) << 16 |
         static_cast<std::uint32_t>(p[2]) << 8 | p[3];
}

// The length of the (possibly compressed) name at `at`, or -1 when it runs off the message.
long name_length(const unsigned char* at, const unsigned char* message, int length) {
  char* name = nullptr;
  long used = 0;
  if (ares_expand_name(at, message, length, &name, &used) != ARES_SUCCESS) return -1;
  ares_free_string(name);
  return used;
}

std::string expand_name(const unsigned char* at, const unsigned char* message, int length, bool& ok) {
  char* name = nullptr;
  long used = 0;
  ok = ares_expand_name(at, message, length, &name, &used) == ARES_SUCCESS;
  if (!ok) return {};
  std::string result = sdk::lower_ascii(name);
  ares_free_string(name);
  if (!result.empty() && result.back() == '.') result.pop_back();
  return result;
}

struct QueryState {
  bool done = false;
  int status = ARES_ETIMEOUT;
  std::vector<unsigned char> response;
};

void on_answer(void* argument, int status, int /*timeouts*/, unsigned char* response, int length) {
  auto* state = static_cast<QueryState*>(argument);
  state->done = true;
  state->status = status;
  if (response != nullptr && length > 0) state->response.assign(response, response + length);
}

int wire_type(sdk::DnsType type) {
  switch (type) {
    case sdk::DnsType::a: return ns_t_a;
    case sdk::DnsType::aaaa: return ns_t_aaaa;
    case sdk::DnsType::mx: return ns_t_mx;
    case sdk::DnsType::txt: return ns_t_txt;
    case sdk::DnsType::ptr: break;
  }
  return ns_t_ptr;
}

// 192.0.2.1 -> 1.2.0.192.in-addr.arpa; an IPv6 address nibble by nibble under ip6.arpa.
std::optional<std::string> reverse_name(const std::string& address) {
  unsigned char octets[16];
  if (inet_pton(AF_INET, address.c_str(), octets) == 1) {
    return fmt::format("{}.{}.{}.{}.in-addr.arpa", octets[3], octets[2], octets[1], octets[0]);
  }
  if (inet_pton(AF_INET6, address.c_str(), octets) != 1) return std::nullopt;
  std::string name;
  for (int i = 15; i >= 0; --i) name += fmt::format("{:x}.{:x}.", octets[i] & 0x0f, octets[i] >> 4);
  return name + "ip6.arpa";
}

}  // namespace

Resolver::Resolver(std::vector<std::string> servers) : pool_(4) {
  ares_library_init(ARES_LIB_INIT_ALL);
  for (const std::string& server : servers) servers_ += (servers_.empty() ? "" : ",") + server;
}

Resolver::~Resolver() {
  pool_.join();
  ares_library_cleanup();
}

sdk::DnsAnswer Resolver::parse(const unsigned char* response, int length, int type, std::uint32_t& ttl) {
  sdk::DnsAnswer answer;
  ttl = kMaxTtl;
  if (length < 12) {
    answer.error = "short DNS answer";
    return answer;
  }
  const int rcode = response[3] & 0x0f;
  if (rcode == ns_r_nxdomain) {
    answer.status = sdk::DnsAnswer::Status::no_domain;
    ttl = kNegativeTtl;
    return answer;
  }
  if (rcode != ns_r_noerror) {
    answer.error = "DNS answered with rcode " + std::to_string(rcode);
    return answer;
  }
  const int questions = read16(response + 4);
  const int answers = read16(response + 6);
  const unsigned char* at = response + 12;
  const unsigned char* end = response + length;
  for (int i = 0; i < questions; ++i) {
    const long used = name_length(at, response, length);
    if (used < 0 || at + used + 4 > end) {
      answer.error = "malformed DNS answer";
      return answer;
    }
    at += used + 4;
  }
  for (int i = 0; i < answers; ++i) {
    const long used = name_length(at, response, length);
    if (used < 0 || at + used + 10 > end) break;
    at += used;
    const int record_type = read16(at);
    const std::uint32_t record_ttl = read32(at + 4);
    const int data_length = read16(at + 8);
    at += 10;
    if (at + data_length > end) break;
    if (record_type == type) {
      sdk::DnsAnswer::Record record;
      bool ok = true;
      if (type == ns_t_mx && data_length >= 3) {
        record.preference = read16(at);
        record.value = expand_name(at + 2, response, length, ok);
      } else if (type == ns_t_a && data_length == 4) {
        char text[INET_ADDRSTRLEN];
        ok = inet_ntop(AF_INET, at, text, sizeof text) != nullptr;
        record.value = text;
      } else if (type == ns_t_aaaa && data_length == 16) {
        char text[INET6_ADDRSTRLEN];
        ok = inet_ntop(AF_INET6, at, text, sizeof text) != nullptr;
        record.value = text;
      } else if (type == ns_t_ptr) {
        record.value = expand_name(at, response, length, ok);
      } else if (type == ns_t_txt) {
        // Character strings, each led by its length, joined (RFC 7208 section 3.3 reads SPF records so).
        for (const unsigned char* piece = at; ok && piece < at + data_length; piece += 1 + *piece) {
          ok = piece + 1 + *piece <= at + data_length;
          if (ok) record.value.append(reinterpret_cast<const char*>(piece + 1), *piece);
        }
      } else {
        ok = false;
      }
      if (ok) {
        answer.records.push_back(std::move(record));
        ttl = std::min(ttl, record_ttl);
      }
    }
    at += data_length;
  }
  answer.status = answer.records.empty() ? sdk::DnsAnswer::Status::no_data : sdk::DnsAnswer::Status::ok;
  if (answer.records.empty()) ttl = kNegativeTtl;
  return answer;
}

sdk::DnsAnswer Resolver::query(const std::string& name, int type, std::uint32_t& ttl) {
  sdk::DnsAnswer answer;
  ttl = 0;
  ares_channel channel = nullptr;
  ares_options options{};
  options.timeout = 2000;
  options.tries = 2;
  if (ares_init_options(&channel, &options, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES) != ARES_SUCCESS) {
    answer.error = "cannot start the DNS resolver";
    return answer;
  }
  if (!servers_.empty() && ares_set_servers_ports_csv(channel, servers_.c_str()) != ARES_SUCCESS) {
    ares_destroy(channel);
    answer.error = "bad DNS server list " + servers_;
    return answer;
  }
  QueryState state;
  ares_query(channel, name.c_str(), ns_c_in, type, on_answer, &state);
  // poll(), not select(): the server raises its descriptor limit, and a socket numbered past FD_SETSIZE
  // would overrun an fd_set.
  while (!state.done) {
    ares_socket_t sockets[ARES_GETSOCK_MAXNUM];
    const int mask = ares_getsock(channel, sockets, ARES_GETSOCK_MAXNUM);
    std::vector<pollfd> watched;
    for (int i = 0; i < ARES_GETSOCK_MAXNUM; ++i) {
      short events = 0;
      if (ARES_GETSOCK_READABLE(mask, i)) events |= POLLIN;
      if (ARES_GETSOCK_WRITABLE(mask, i)) events |= POLLOUT;
      if (events != 0) watched.push_back({sockets[i], events, 0});
    }
    if (watched.empty()) break;
    timeval wait{};
    const timeval* limit = ares_timeout(channel, nullptr, &wait);
    const int milliseconds = limit == nullptr ? 1000 : static_cast<int>(limit->tv_sec * 1000 + limit->tv_usec / 1000);
    if (::poll(watched.data(), watched.size(), milliseconds) <= 0) {
      ares_process_fd(channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // timeouts and retries
      continue;
    }
    for (const pollfd& entry : watched) {
      const bool readable = (entry.revents & (POLLIN | POLLERR | POLLHUP)) != 0;
      const bool writable = (entry.revents & POLLOUT) != 0;
      if (readable || writable) {
        ares_process_fd(channel, readable ? entry.fd : ARES_SOCKET_BAD, writable ? entry.fd : ARES_SOCKET_BAD);
      }
    }
  }
  ares_destroy(channel);
  if (!state.response.empty() &&
      (state.status == ARES_SUCCESS || state.status == ARES_ENODATA || state.status == ARES_ENOTFOUND)) {
    return parse(state.response.data(), static_cast<int>(state.response.size()), type, ttl);
  }
  answer.error = std::string("DNS lookup failed: ") + ares_strerror(state.status);
  return answer;
}

sdk::Task<sdk::DnsAnswer> Resolver::resolve(std::string name, sdk::DnsType type) {
  // By reference only: g++ 12 frees a lambda's by-value captures in a co_await operand from the wrong place.
  const sdk::DnsAnswer answer = co_await boost::asio::co_spawn(
      pool_.get_executor(), [this, &name, &type]() -> sdk::Task<sdk::DnsAnswer> { co_return lookup(name, type); },
      boost::asio::use_awaitable);
  co_return answer;
}

sdk::DnsAnswer Resolver::lookup(const std::string& asked, sdk::DnsType type) {
  // PTR asks for the address's name under in-addr.arpa or ip6.arpa.
  std::string name = sdk::lower_ascii(asked);
  if (type == sdk::DnsType::ptr) {
    const std::optional<std::string> reverse = reverse_name(name);
    if (!reverse) return {sdk::DnsAnswer::Status::failed, {}, name + " is not an IP address"};
    name = *reverse;
  }
  const auto key = std::make_pair(name, static_cast<int>(type));
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(mutex_);
    const auto found = cache_.find(key);
    if (found != cache_.end() && found->second.expires > now) return found->second.answer;
  }
  std::uint32_t ttl = 0;
  sdk::DnsAnswer answer = query(name, wire_type(type), ttl);
  if (answer.status != sdk::DnsAnswer::Status::failed && ttl > 0) {
    std::lock_guard lock(mutex_);
    if (cache_.size() > 100000) cache_.clear();  // a bound, not a policy: a busy server refills it in seconds
    cache_[key] = {answer, now + std::chrono::seconds(ttl)};
  }
  return answer;
}

}  // namespace tern::dns
