// Entry point of the fetch plugin: reads [[plugin.fetch.account]] and registers the collector as a service.
#include <fmt/format.h>

#include "fetch_service.hpp"
#include "tern/sdk/plugin.hpp"
#include "tern/sdk/text.hpp"

namespace {

tern::fetch::Account read_account(const tern::sdk::ConfigSection& section) {
  using tern::sdk::TlsMode;
  tern::fetch::Account account;
  const auto required = [&](const char* key) {
    std::optional<std::string> value = section.get_string(key);
    if (!value || value->empty()) section.fail(key, "is required");
    return *value;
  };
  account.name = required("name");
  const std::string protocol = section.get_string("protocol").value_or("pop3");
  if (protocol != "pop3" && protocol != "imap") section.fail("protocol", "must be \"pop3\" or \"imap\"");
  const bool imap = protocol == "imap";
  account.protocol = imap ? tern::fetch::Account::Protocol::imap : tern::fetch::Account::Protocol::pop3;
  account.folder = section.get_string("folder").value_or("INBOX");
  if (!imap && account.folder != "INBOX") section.fail("folder", "is for IMAP accounts");
  account.server = required("server");
  const std::string tls = section.get_string("tls").value_or("implicit");
  if (tls == "implicit") {
    account.tls.mode = TlsMode::implicit;
  } else if (tls == "starttls") {
    account.tls.mode = TlsMode::starttls;
  } else if (tls == "none") {
    account.tls.mode = TlsMode::none;
  } else {
    section.fail("tls", "must be \"implicit\", \"starttls\" or \"none\"");
  }
  account.tls.verify = section.get_bool("verify").value_or(true);
  const bool implicit = account.tls.mode == TlsMode::implicit;
  const std::int64_t port =
      section.get_integer("port").value_or(imap ? (implicit ? 993 : 143) : (implicit ? 995 : 110));
  if (port < 1 || port > 65535) section.fail("port", "must be 1 to 65535");
  account.port = static_cast<std::uint16_t>(port);
  account.user = required("user");
  account.password = required("password");
  account.deliver_to = tern::sdk::lower_ascii(section.get_string("deliver_to").value_or(""));
  account.domain = tern::sdk::lower_ascii(section.get_string("domain").value_or(""));
  if (account.deliver_to.empty() == account.domain.empty()) {
    section.fail(account.domain.empty() ? "deliver_to" : "domain",
                 "set either deliver_to (one user) or domain (a domain-wide mailbox), not both");
  }
  account.envelope_fields = section.get_strings("envelope")
                                .value_or(std::vector<std::string>{"Delivered-To", "X-Original-To", "X-Envelope-To",
                                                                   "Envelope-To", "Received"});
  for (const tern::sdk::ConfigSection* rule_section : section.get_tables("rule")) {
    tern::fetch::Account::Rule rule;
    rule.list_id = tern::sdk::lower_ascii(rule_section->get_string("list_id").value_or(""));
    rule.sender = tern::sdk::lower_ascii(rule_section->get_string("sender").value_or(""));
    rule.deliver_to = rule_section->get_strings("deliver_to").value_or(std::vector<std::string>{});
    if (rule.list_id.empty() == rule.sender.empty()) rule_section->fail("list_id", "set list_id or sender");
    if (rule.deliver_to.empty()) rule_section->fail("deliver_to", "is required");
    for (std::string& address : rule.deliver_to) address = tern::sdk::lower_ascii(address);
    account.rules.push_back(std::move(rule));
  }
  if (!account.rules.empty() && account.domain.empty()) section.fail("rule", "rules are for a domain-wide mailbox");
  const std::int64_t interval = section.get_integer("interval").value_or(1800);
  if (interval < 1 || interval > 7 * 24 * 3600) section.fail("interval", "must be 1 to 604800 seconds");
  account.interval = std::chrono::seconds(interval);
  account.keep = section.get_bool("keep").value_or(false);
  if (const std::optional<std::int64_t> days = section.get_integer("delete_after_days")) {
    if (!account.keep) section.fail("delete_after_days", "is for an account with keep = true");
    if (*days < 0 || *days > 3650) section.fail("delete_after_days", "must be 0 to 3650");
    account.delete_after = std::chrono::hours(24 * *days);
  }
  return account;
}

}  // namespace

TERN_PLUGIN("fetch", "0.1.0", "service:fetch") {
  std::vector<tern::fetch::Account> accounts;
  for (const tern::sdk::ConfigSection* section : registrar.config().get_tables("account")) {
    accounts.push_back(read_account(*section));
    for (std::size_t i = 0; i + 1 < accounts.size(); ++i) {
      if (accounts[i].name == accounts.back().name) section->fail("name", "names another account already");
    }
  }
  if (!accounts.empty()) registrar.add_service(std::make_shared<tern::fetch::FetchService>(std::move(accounts)));
}
