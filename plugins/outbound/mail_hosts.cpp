#include "mail_hosts.hpp"

#include <algorithm>
#include <random>

namespace tern::outbound {

using Status = sdk::DnsAnswer::Status;

sdk::Task<MxAnswer> find_mail_hosts(sdk::ServerContext& server, std::string domain, std::string self) {
  MxAnswer result;
  const sdk::DnsAnswer mx = co_await server.resolve(domain, sdk::DnsType::mx);
  std::vector<sdk::DnsAnswer::Record> exchangers;
  switch (mx.status) {
    case Status::failed: result.error = mx.error + " (MX " + domain + ")"; co_return result;
    case Status::no_domain:
      result.outcome = MxAnswer::Outcome::no_such_domain;
      result.error = "Host or domain name not found: " + domain;
      co_return result;
    case Status::no_data:
      exchangers.push_back({0, domain});  // RFC 5321 5.1: the domain itself, as an implicit MX
      break;
    case Status::ok: exchangers = mx.records; break;
  }
  if (std::any_of(exchangers.begin(), exchangers.end(), [](const auto& r) { return r.value.empty(); })) {
    result.outcome = MxAnswer::Outcome::null_mx;
    result.error = "Domain " + domain + " does not accept mail (null MX)";
    co_return result;
  }
  std::stable_sort(exchangers.begin(), exchangers.end(),
                   [](const auto& a, const auto& b) { return a.preference < b.preference; });
  // RFC 5321 section 5.1: when this server is one of the exchangers (a backup MX), only better ones are tried.
  const auto ourselves =
      std::find_if(exchangers.begin(), exchangers.end(), [&](const auto& r) { return r.value == self; });
  if (ourselves != exchangers.end()) {
    const int ours = ourselves->preference;
    std::erase_if(exchangers, [&](const auto& r) { return r.preference >= ours; });
    if (exchangers.empty()) {
      result.outcome = MxAnswer::Outcome::loop;
      result.error = "mail for " + domain + " loops back to myself (" + self + " is its best MX)";
      co_return result;
    }
  }
  thread_local std::minstd_rand random(std::random_device{}());
  for (auto first = exchangers.begin(); first != exchangers.end();) {
    auto last = std::find_if(first, exchangers.end(), [&](const auto& r) { return r.preference != first->preference; });
    std::shuffle(first, last, random);
    first = last;
  }
  bool temporary = false;
  std::string last_error;
  for (const auto& exchanger : exchangers) {
    MailHost host{exchanger.value, {}};
    for (const sdk::DnsType type : {sdk::DnsType::a, sdk::DnsType::aaaa}) {
      const sdk::DnsAnswer addresses = co_await server.resolve(exchanger.value, type);
      if (addresses.status == Status::failed) {
        temporary = true;
        last_error = addresses.error + " (" + exchanger.value + ")";
      }
      for (const auto& address : addresses.records) host.addresses.push_back(address.value);
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
  co_return result;
}

}  // namespace tern::outbound
