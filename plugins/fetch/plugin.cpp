// Entry point of the fetch plugin: reads [[plugin.fetch.account]] and registers the collector as a service.
#include <fmt/format.h>

#include <iostream>
#include "fetch_service.hpp"

#include "tern/sdk/command.hpp"
#include "tern/sdk/plugin.hpp"
#include "tern/sdk/text.hpp"

namespace {

tern::fetch::Account read_account(const tern::sdk::ConfigSection& section) {
  using tern::fetch::Account;
  using tern::sdk::TlsMode;
  Account account;
  account.name = section.required_string("name");
  account.protocol = section.choice("protocol", Account::Protocol::pop3,
                                    {{"pop3", Account::Protocol::pop3}, {"imap", Account::Protocol::imap}});
  const bool imap = account.protocol == Account::Protocol::imap;
  account.folder = section.get_string("folder").value_or("INBOX");
  if (!imap && account.folder != "INBOX") section.error("folder", "is for IMAP accounts");
  account.server = section.required_string("server");
  account.tls.mode =
      section.choice("tls", TlsMode::implicit,
                     {{"implicit", TlsMode::implicit}, {"starttls", TlsMode::starttls}, {"none", TlsMode::none}});
  account.tls.verify = section.get_bool("verify").value_or(true);
  const bool implicit = account.tls.mode == TlsMode::implicit;
  account.port = section.port("port", imap ? (implicit ? 993 : 143) : (implicit ? 995 : 110));
  account.user = section.required_string("user");
  account.password = section.required_string("password");
  account.deliver_to = tern::sdk::lower_ascii(section.get_string("deliver_to").value_or(""));
  account.domain = tern::sdk::lower_ascii(section.get_string("domain").value_or(""));
  if (account.deliver_to.empty() == account.domain.empty()) {
    section.error(account.domain.empty() ? "deliver_to" : "domain",
                  "set either deliver_to (one user) or domain (a domain-wide mailbox), not both");
  }
  account.envelope_fields = section.get_strings("envelope")
                                .value_or(std::vector<std::string>{"Delivered-To", "X-Original-To", "X-Envelope-To",
                                                                   "Envelope-To", "Received"});
  for (const tern::sdk::ConfigSection* rule_section : section.get_tables("rule")) {
    Account::Rule rule;
    rule.list_id = tern::sdk::lower_ascii(rule_section->get_string("list_id").value_or(""));
    rule.sender = tern::sdk::lower_ascii(rule_section->get_string("sender").value_or(""));
    rule.deliver_to = rule_section->get_strings("deliver_to").value_or(std::vector<std::string>{});
    if (rule.list_id.empty() == rule.sender.empty()) rule_section->error("list_id", "set list_id or sender");
    if (rule.deliver_to.empty()) rule_section->error("deliver_to", "is required");
    for (std::string& address : rule.deliver_to) address = tern::sdk::lower_ascii(address);
    account.rules.push_back(std::move(rule));
  }
  if (!account.rules.empty() && account.domain.empty()) section.error("rule", "rules are for a domain-wide mailbox");
  account.interval =
      section.duration("interval", std::chrono::minutes(30), std::chrono::seconds(1), std::chrono::days(7));
  account.keep = section.get_bool("keep").value_or(false);
  // -1: not set (or refused, with the error recorded).
  if (const std::int64_t days = section.integer("delete_after_days", -1, 0, 3650); days >= 0) {
    if (!account.keep) section.error("delete_after_days", "is for an account with keep = true");
    account.delete_after = std::chrono::hours(24 * days);
  }
  return account;
}

// `tern fetch run [ACCOUNT]`: polls the account, or every one, now, in the command's own process.
class FetchCommand final : public tern::sdk::Command {
 public:
  explicit FetchCommand(std::shared_ptr<const tern::fetch::FetchService> service) : service_(std::move(service)) {}
  std::string name() const override { return "fetch"; }
  std::string summary() const override { return "collecting remote mailboxes: run [ACCOUNT] polls now"; }
  tern::sdk::Task<int> run(tern::sdk::ServiceContext& context, std::vector<std::string> arguments) const override {
    if (arguments.empty() || arguments.front() != "run" || arguments.size() > 2) {
      std::cerr << "usage: tern fetch run [ACCOUNT]: poll one account, or all, now\n";
      co_return 2;
    }
    if (!service_) {
      std::cerr << "tern: no fetch account is configured ([[plugin.fetch.account]])\n";
      co_return 2;
    }
    // A local, not a temporary in the await: g++ 12 frees a coroutine's by-value argument made from one twice.
    const std::string account = arguments.size() == 2 ? arguments[1] : std::string();
    const int code = co_await service_->run_once(context, account);
    co_return code;
  }

 private:
  std::shared_ptr<const tern::fetch::FetchService> service_;
};

}  // namespace

TERN_PLUGIN("fetch", "0.1.0", "service:fetch,command:fetch") {
  std::vector<tern::fetch::Account> accounts;
  for (const tern::sdk::ConfigSection* section : registrar.config().get_tables("account")) {
    accounts.push_back(read_account(*section));
    for (std::size_t i = 0; i + 1 < accounts.size(); ++i) {
      if (accounts[i].name == accounts.back().name) section->error("name", "names another account already");
    }
  }
  std::shared_ptr<const tern::fetch::FetchService> service;
  if (!accounts.empty()) service = std::make_shared<tern::fetch::FetchService>(std::move(accounts));
  if (service) registrar.add_service(service);
  registrar.add_command(std::make_shared<FetchCommand>(service));
}
