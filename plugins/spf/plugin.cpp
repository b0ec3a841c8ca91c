// Entry point of the spf plugin: checks the sender of each message received over SMTP against its domain's SPF
// record (RFC 7208) at the end of DATA, records the result in a Received-SPF field and, as configured, refuses
// or defers the message.
//
//   [plugin.spf]
//   fail = "annotate"        # or "reject": 550 5.7.23 with the domain's explanation
//   permerror = "annotate"   # or "reject": 550 5.7.24
//   temperror = "defer"      # or "annotate": 451 4.7.24, so the sender tries again later
//   authenticated = false    # check authenticated sessions (submission) too
//   skip_networks = ["127.0.0.0/8", "::1"]   # clients not checked: this host, and the LAN when listed
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <utility>
#include <vector>

#include "ip_address.hpp"
#include "received_spf.hpp"
#include "spf_check.hpp"
#include "tern/sdk/async_hook.hpp"
#include "tern/sdk/plugin.hpp"

namespace {

using tern::sdk::Verdict;
using tern::spf::Result;

// Used for a fail whose domain gives no explanation of its own (exp=).
constexpr const char* kDefaultExplanation = "%{o} does not designate %{c} as a permitted sender (SPF)";

struct Settings {
  bool reject_fail = false;
  bool reject_permerror = false;
  bool defer_temperror = true;
  bool authenticated = false;
  std::vector<tern::inet::Network> skipped;

  bool skips(const std::string& client) const {
    const std::optional<tern::inet::Address> address = tern::inet::Address::parse(client);
    return address && std::any_of(skipped.begin(), skipped.end(),
                                  [&](const tern::inet::Network& network) { return network.contains(*address); });
  }
};

class ServerDns final : public tern::spf::Dns {
 public:
  explicit ServerDns(tern::sdk::ServerContext& server) : server_(server) {}
  tern::sdk::Task<tern::sdk::DnsAnswer> lookup(std::string name, tern::sdk::DnsType type) override {
    return server_.resolve(std::move(name), type);
  }

 private:
  tern::sdk::ServerContext& server_;
};

class SpfHook final : public tern::sdk::AsyncHook {
 public:
  explicit SpfHook(Settings settings) : settings_(settings) {}

  tern::sdk::Task<Verdict> call(tern::sdk::HookContext& context, tern::sdk::ServerContext& server) const override {
    const tern::sdk::ClientInfo& client = context.client();
    // Mail from a user who logged in, or collected by the server itself, is not the sending domain's to vouch for.
    if (client.protocol != "smtp" && client.protocol != "submission") co_return Verdict::next();
    if (!client.user.empty() && !settings_.authenticated) co_return Verdict::next();
    if (settings_.skips(client.address)) co_return Verdict::next();
    ServerDns dns(server);
    tern::spf::Query query;
    query.ip = client.address;
    query.sender = context.envelope()->sender;
    query.helo = client.helo;
    query.receiver = std::string(server.hostname());
    query.timestamp =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    const tern::spf::Outcome outcome = co_await tern::spf::check(dns, query, kDefaultExplanation);
    const std::string_view result = tern::spf::result_name(outcome.result);
    server.count(fmt::format("spf_{}", result), 1);
    context.add_header("Received-SPF", tern::spf::received_spf(outcome, query));
    if (outcome.result == Result::fail && settings_.reject_fail) {
      co_return Verdict::reject(550, "5.7.23", outcome.explanation);
    }
    if (outcome.result == Result::permerror && settings_.reject_permerror) {
      co_return Verdict::reject(550, "5.7.24", fmt::format("SPF record of {} is in error", outcome.domain));
    }
    if (outcome.result == Result::temperror && settings_.defer_temperror) {
      co_return Verdict::defer(451, "4.7.24",
                               fmt::format("SPF of {} cannot be checked now, try again later", outcome.domain));
    }
    co_return Verdict::next();
  }

 private:
  Settings settings_;
};

}  // namespace

TERN_PLUGIN("spf", "0.1.0", "hook:message") {
  const tern::sdk::ConfigSection& config = registrar.config();
  Settings settings;
  settings.reject_fail = config.choice("fail", false, {{"annotate", false}, {"reject", true}});
  settings.reject_permerror = config.choice("permerror", false, {{"annotate", false}, {"reject", true}});
  settings.defer_temperror = config.choice("temperror", true, {{"defer", true}, {"annotate", false}});
  settings.authenticated = config.get_bool("authenticated").value_or(false);
  const std::vector<std::string> skipped =
      config.get_strings("skip_networks").value_or(std::vector<std::string>{"127.0.0.0/8", "::1"});
  for (const std::string& text : skipped) {
    if (const std::optional<tern::inet::Network> network = tern::inet::Network::parse(text)) {
      settings.skipped.push_back(*network);
    } else {
      config.error("skip_networks", fmt::format("\"{}\" is not an address or a network (192.0.2.0/24)", text));
    }
  }
  // Early in the chain: later hooks (Lua, filters) see the Received-SPF field.
  registrar.add_hook({"spf.check", tern::sdk::Stage::message, -100, {}, std::make_shared<SpfHook>(settings)});
}
