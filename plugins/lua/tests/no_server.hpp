// A server for running Lua hooks outside Tern (the unit tests, the Lua fuzz target): no store, logins, hooks
// or network (those calls fail as they would in production), a log that drops its lines, offload() inline, and
// a DNS that knows one TXT record, policy.example.test, for the tests of tern.dns.
#pragma once

#include <utility>  // before Boost.Asio: Boost 1.74's awaitable.hpp needs it with g++ 12

#include <stdexcept>
#include <string>
#include <vector>

#include "tern/sdk/log.hpp"
#include "tern/sdk/protocol.hpp"

namespace tern::lua {

class NoServer final : public tern::sdk::ServerContext {
 public:
  std::string_view hostname() const override { return "mx.example.test"; }
  tern::sdk::MailStore& store() override { throw std::logic_error("no store in this test"); }
  tern::sdk::Log& log() override { return log_; }
  tern::sdk::Task<tern::sdk::Verdict> run_hooks(tern::sdk::Stage, tern::sdk::HookContext&) override {
    throw std::logic_error("no hooks in this test");
  }
  tern::sdk::Task<void> offload(std::function<void()> work) override {
    work();
    co_return;
  }
  tern::sdk::Task<tern::sdk::LoginResult> authenticate(const tern::sdk::ClientInfo&, std::string_view,
                                                       std::string_view) override {
    throw std::logic_error("no logins in this test");
  }
  tern::sdk::Task<std::shared_ptr<tern::sdk::Connection>> connect(std::string, std::uint16_t, tern::sdk::ClientTls,
                                                                  std::string& error) override {
    error = "no network in this test";
    co_return nullptr;
  }
  // Knows one name: for the tests of tern.dns.
  tern::sdk::Task<tern::sdk::DnsAnswer> resolve(std::string name, tern::sdk::DnsType type) override {
    if (name == "policy.example.test" && type == tern::sdk::DnsType::txt) {
      co_return tern::sdk::DnsAnswer{tern::sdk::DnsAnswer::Status::ok, {{0, "v=block"}}, {}};
    }
    co_return tern::sdk::DnsAnswer{tern::sdk::DnsAnswer::Status::no_domain, {}, {}};
  }
  void mailbox_changed(const std::vector<std::string>&) override {}
  void count(std::string_view, std::int64_t) override {}
  std::vector<std::pair<std::string, std::int64_t>> counters() const override { return {}; }
  tern::sdk::Task<tern::sdk::WakeReason> wait_for_news(tern::sdk::Connection&, std::string_view,
                                                       std::chrono::seconds) override {
    throw std::logic_error("no news in this test");
  }

 private:
  class NullLog final : public tern::sdk::Log {
   public:
    void write(tern::sdk::LogLevel, std::string_view) override {}
  } log_;
};

}  // namespace tern::lua
