// Entry point of the dnsbl plugin: asks DNS block lists about the client's address (and, for domain lists, its
// HELO name and the sender's domain), adds up the weights of the lists that name it, and refuses the
// transaction at MAIL FROM (554 5.7.1, with the list's name and its TXT reason) once the total reaches the
// threshold, or marks the message instead.
//
//   [plugin.dnsbl]
//   threshold = 1                          # the total weight that refuses (or marks)
//   action = "reject"                      # or "annotate": an X-Tern-DNSBL field with the score and lists
//   allow = ["127.0.0.0/8", "::1"]         # clients never checked
//   [[plugin.dnsbl.list]]
//   zone = "zen.spamhaus.org"
//   weight = 1
//   checks = "ip"                          # or "domain": the HELO name and the sender's domain
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <optional>
#include <vector>

#include "ip_address.hpp"
#include "tern/sdk/address.hpp"
#include "tern/sdk/async_hook.hpp"
#include "tern/sdk/plugin.hpp"

namespace {

using tern::sdk::DnsAnswer;
using tern::sdk::Verdict;

struct BlockList {
  std::string zone;
  std::int64_t weight = 1;
  bool domains = false;  // a domain list (HELO, sender domain) rather than an address list
};

struct Settings {
  std::vector<BlockList> lists;
  std::int64_t threshold = 1;
  bool reject = true;
  std::vector<tern::inet::Network> allowed;
};

// What the lists said of one client.
struct Findings {
  std::int64_t score = 0;
  std::int64_t unknown = 0;         // the weight of the lists that did not answer
  std::vector<std::string> listed;  // "zone" of each list that names the client
  std::string first_name;           // the first name found listed, whose TXT record says why
};

// Whether an answer lists the name: an address in 127.0.0.0/8. 127.255.255.0/24 is how lists say they refuse
// to answer (an open resolver, a query limit), which lists nothing.
bool lists(const DnsAnswer& answer) {
  return std::any_of(answer.records.begin(), answer.records.end(), [](const DnsAnswer::Record& record) {
    return record.value.rfind("127.", 0) == 0 && record.value.rfind("127.255.255.", 0) != 0;
  });
}

class BlockListHook final : public tern::sdk::AsyncHook {
 public:
  BlockListHook(std::shared_ptr<const Settings> settings, bool at_mail)
      : settings_(std::move(settings)), at_mail_(at_mail) {}

  tern::sdk::Task<Verdict> call(tern::sdk::HookContext& context, tern::sdk::ServerContext& server) const override {
    const tern::sdk::ClientInfo& client = context.client();
    const std::optional<tern::inet::Address> address = tern::inet::Address::parse(client.address);
    if (!client.user.empty() || client.protocol != "smtp" || !address) co_return Verdict::next();
    const auto& allowed = settings_->allowed;
    if (std::any_of(allowed.begin(), allowed.end(), [&](const auto& network) { return network.contains(*address); })) {
      co_return Verdict::next();
    }
    const std::string sender_domain = tern::sdk::domain_of(context.envelope()->sender);
    Findings found;
    for (const BlockList& list : settings_->lists) {
      std::vector<std::string> names;
      if (!list.domains) {
        names.push_back(address->reversed() + "." + list.zone);
      } else {
        for (const std::string& domain : {tern::sdk::lower_ascii(client.helo), sender_domain}) {
          if (tern::sdk::is_domain_name(domain)) names.push_back(domain + "." + list.zone);
        }
      }
      bool failed = false;
      bool listed = false;
      for (const std::string& name : names) {
        const DnsAnswer answer = co_await server.resolve(name, tern::sdk::DnsType::a);
        failed = failed || answer.status == DnsAnswer::Status::failed;
        if (!lists(answer)) continue;
        listed = true;
        if (found.first_name.empty()) found.first_name = name;
        break;
      }
      if (listed) {
        found.score += list.weight;
        found.listed.push_back(list.zone);
      } else if (failed) {
        found.unknown += list.weight;
      }
    }
    const bool over = found.score >= settings_->threshold;
    server.count(over ? "dnsbl_listed" : "dnsbl_clean", 1);
    if (over && settings_->reject) {
      const DnsAnswer why = co_await server.resolve(found.first_name, tern::sdk::DnsType::txt);
      const std::string reason = why.status == DnsAnswer::Status::ok && !why.records.empty()
                                     ? ": " + why.records.front().value
                                     : std::string();
      co_return Verdict::reject(554, "5.7.1",
                                fmt::format("Service unavailable; client [{}] listed by {}{}", client.address,
                                            fmt::join(found.listed, ", "), reason));
    }
    // A list that did not answer could have made the difference: the sender tries again later.
    if (!over && found.score + found.unknown >= settings_->threshold) {
      co_return Verdict::defer(451, "4.7.1", "DNS block lists cannot be asked now, try again later");
    }
    if (!at_mail_ && !found.listed.empty()) {
      context.add_header("X-Tern-DNSBL", fmt::format("score={}; threshold={}; listed={}", found.score,
                                                     settings_->threshold, fmt::join(found.listed, ",")));
    }
    co_return Verdict::next();
  }

 private:
  std::shared_ptr<const Settings> settings_;
  bool at_mail_;
};

}  // namespace

TERN_PLUGIN("dnsbl", "0.1.0", "hook:mail,hook:message") {
  const tern::sdk::ConfigSection& config = registrar.config();
  auto settings = std::make_shared<Settings>();
  settings->threshold = config.integer("threshold", 1, 1, 1000);
  settings->reject = config.choice("action", true, {{"reject", true}, {"annotate", false}});
  for (const std::string& text : config.get_strings("allow").value_or(std::vector<std::string>{"127.0.0.0/8", "::1"})) {
    if (const std::optional<tern::inet::Network> network = tern::inet::Network::parse(text)) {
      settings->allowed.push_back(*network);
    } else {
      config.error("allow", fmt::format("\"{}\" is not an address or a network (192.0.2.0/24)", text));
    }
  }
  for (const tern::sdk::ConfigSection* table : config.get_tables("list")) {
    BlockList list;
    list.zone = tern::sdk::lower_ascii(table->required_string("zone"));
    if (!list.zone.empty() && !tern::sdk::is_domain_name(list.zone)) table->error("zone", "must be a domain name");
    list.weight = table->integer("weight", 1, 1, 1000);
    list.domains = table->choice("checks", false, {{"ip", false}, {"domain", true}});
    settings->lists.push_back(list);
  }
  // Off until lists are named.
  if (settings->lists.empty()) return;
  if (settings->reject) {
    registrar.add_hook(
        {"dnsbl.mail", tern::sdk::Stage::mail, -100, {}, std::make_shared<BlockListHook>(settings, true)});
  } else {
    registrar.add_hook(
        {"dnsbl.mark", tern::sdk::Stage::message, -90, {}, std::make_shared<BlockListHook>(settings, false)});
  }
}
