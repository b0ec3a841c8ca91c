#include "dns_resolver.hpp"

#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <poll.h>

#include <algorithm>
#include <random>

#include "tern/sdk/text.hpp"

namespace tern::outbound {
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

}  // namespace

DnsResolver::DnsResolver(std::vector<std::string> servers) {
  ares_library_init(ARES_LIB_INIT_ALL);
  for (const std::string& server : servers) servers_ += (servers_.empty() ? "" : ",") + server;
}

DnsResolver::~DnsResolver() {
  ares_library_cleanup();
}

DnsResolver::Answer DnsResolver::parse(const unsigned char* response, int length, int type, std::uint32_t& ttl) {
  Answer answer;
  ttl = kMaxTtl;
  if (length < 12) {
    answer.error = "short DNS answer";
    return answer;
  }
  const int rcode = response[3] & 0x0f;
  if (rcode == ns_r_nxdomain) {
    answer.status = Answer::Status::no_domain;
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
      Record record;
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
  answer.status = answer.records.empty() ? Answer::Status::no_data : Answer::Status::ok;
  if (answer.records.empty()) ttl = kNegativeTtl;
  return answer;
}

DnsResolver::Answer DnsResolver::query(const std::string& name, int type, std::uint32_t& ttl) {
  Answer answer;
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

DnsResolver::Answer DnsResolver::lookup(const std::string& name, int type) {
  const auto key = std::make_pair(name, type);
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(mutex_);
    const auto found = cache_.find(key);
    if (found != cache_.end() && found->second.expires > now) return found->second.answer;
  }
  std::uint32_t ttl = 0;
  Answer answer = query(name, type, ttl);
  if (answer.status != Answer::Status::failed && ttl > 0) {
    std::lock_guard lock(mutex_);
    if (cache_.size() > 100000) cache_.clear();  // a bound, not a policy: a busy server refills it in seconds
    cache_[key] = {answer, now + std::chrono::seconds(ttl)};
  }
  return answer;
}

MxAnswer DnsResolver::mail_hosts(const std::string& domain, const std::string& self) {
  MxAnswer result;
  const Answer mx = lookup(domain, ns_t_mx);
  std::vector<Record> exchangers;
  switch (mx.status) {
    case Answer::Status::failed: result.error = mx.error + " (MX " + domain + ")"; return result;
    case Answer::Status::no_domain:
      result.outcome = MxAnswer::Outcome::no_such_domain;
      result.error = "Host or domain name not found: " + domain;
      return result;
    case Answer::Status::no_data:
      exchangers.push_back({0, domain});  // RFC 5321 5.1: the domain itself, as an implicit MX
      break;
    case Answer::Status::ok: exchangers = mx.records; break;
  }
  const bool null_mx =
      std::any_of(exchangers.begin(), exchangers.end(), [](const Record& r) { return r.value.empty(); });
  if (null_mx) {
    result.outcome = MxAnswer::Outcome::null_mx;
    result.error = "Domain " + domain + " does not accept mail (null MX)";
    return result;
  }
  std::stable_sort(exchangers.begin(), exchangers.end(),
                   [](const Record& a, const Record& b) { return a.preference < b.preference; });
  // RFC 5321 section 5.1: when this server is one of the exchangers (a backup MX), only better ones are tried.
  const auto ourselves =
      std::find_if(exchangers.begin(), exchangers.end(), [&](const Record& r) { return r.value == self; });
  if (ourselves != exchangers.end()) {
    const int ours = ourselves->preference;
    std::erase_if(exchangers, [&](const Record& r) { return r.preference >= ours; });
    if (exchangers.empty()) {
      // Mail for a domain whose best MX is this server, yet not a local domain here: a configuration error,
      // which waits for its fix rather than bouncing.
      result.outcome = MxAnswer::Outcome::loop;
      result.error = "mail for " + domain + " loops back to myself (" + self + " is its best MX)";
      return result;
    }
  }
  thread_local std::minstd_rand random(std::random_device{}());
  for (auto first = exchangers.begin(); first != exchangers.end();) {
    auto last =
        std::find_if(first, exchangers.end(), [&](const Record& r) { return r.preference != first->preference; });
    std::shuffle(first, last, random);
    first = last;
  }
  bool temporary = false;
  std::string last_error;
  for (const Record& exchanger : exchangers) {
    MailHost host{exchanger.value, {}};
    for (const int type : {ns_t_a, ns_t_aaaa}) {
      const Answer addresses = lookup(exchanger.value, type);
      if (addresses.status == Answer::Status::failed) {
        temporary = true;
        last_error = addresses.error + " (" + exchanger.value + ")";
      }
      for (const Record& address : addresses.records) host.addresses.push_back(address.value);
    }
    if (!host.addresses.empty()) result.hosts.push_back(std::move(host));
  }
  if (!result.hosts.empty()) {
    result.outcome = MxAnswer::Outcome::found;
  } else if (temporary) {
    result.error = last_error;
  } else {
    result.outcome = MxAnswer::Outcome::no_such_domain;
    result.error = "No address for the mail hosts of " + domain;
  }
  return result;
}

}  // namespace tern::outbound
