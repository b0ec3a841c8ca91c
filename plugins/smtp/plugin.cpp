// Entry point of the smtp plugin: the "smtp" (MX) and "submission" protocols.
#include "tern/sdk/plugin.hpp"
#include "smtp_session.hpp"
#include "tern/sdk/text.hpp"

namespace {

using tern::smtp::Role;
using tern::smtp::SmtpSettings;

class SmtpProtocol final : public tern::sdk::Protocol {
 public:
  SmtpProtocol(std::string name, Role role, SmtpSettings settings)
      : name_(std::move(name)), role_(role), settings_(settings) {}

  std::string name() const override { return name_; }
  std::string busy_reply() const override { return "421 4.7.0 Too many connections, try again later\r\n"; }

  tern::sdk::Task<void> serve(tern::sdk::Connection& connection, tern::sdk::ServerContext& server,
                              const tern::sdk::ListenerInfo& listener, tern::sdk::ClientInfo client) const override {
    tern::smtp::SmtpSession session(connection, server, listener, std::move(client), settings_, role_);
    co_await session.run();
  }

 private:
  std::string name_;
  Role role_;
  SmtpSettings settings_;
};

}  // namespace

TERN_PLUGIN("smtp", "0.1.0", "protocol:smtp,protocol:submission") {
  const auto& config = registrar.config();
  SmtpSettings settings;
  settings.max_message_size = config.size("max_message_size", settings.max_message_size, 1024);
  settings.max_recipients =
      static_cast<std::size_t>(config.integer("max_recipients", static_cast<std::int64_t>(settings.max_recipients), 1));
  settings.max_errors = static_cast<int>(config.integer("max_errors", settings.max_errors, 1));
  settings.command_timeout =
      config.duration("command_timeout", settings.command_timeout, std::chrono::seconds(1), std::chrono::hours(1));
  settings.allow_any_sender = config.get_bool("allow_any_sender").value_or(false);
  for (const std::string& domain : config.get_strings("relay_domains").value_or(std::vector<std::string>{})) {
    if (domain.empty() || domain.find_first_of("@ *") != std::string::npos) {
      config.error("relay_domains", "\"" + domain + "\" is not a domain name");
    }
    settings.relay_domains.insert(tern::sdk::lower_ascii(domain));
  }
  for (const std::string& network : config.get_strings("relay_networks").value_or(std::vector<std::string>{})) {
    if (!settings.relay_networks.add(network)) {
      config.error("relay_networks", "\"" + network + "\" is not an IP network such as \"192.0.2.0/24\"");
    }
  }
  registrar.add_protocol(std::make_shared<SmtpProtocol>("smtp", Role::mx, settings));
  registrar.add_protocol(std::make_shared<SmtpProtocol>("submission", Role::submission, settings));
}
