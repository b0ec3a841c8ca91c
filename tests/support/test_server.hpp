// A server for running code that needs an sdk::ServerContext outside Tern (unit tests, fuzz targets): offload()
// runs the work inline, hooks are whatever the test sets in `hooks`, the store is the one the test hands in,
// and the log keeps its lines for the test to read. Logins, connections and IDLE are not there (those calls
// fail as they would with no network), and the DNS knows one TXT record, policy.example.test.
#pragma once

#include <utility>  // before Boost.Asio: Boost 1.74's awaitable.hpp needs it with g++ 12

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "tern/sdk/log.hpp"
#include "tern/sdk/protocol.hpp"

namespace tern::testing {

class RecordingLog final : public sdk::Log {
 public:
  void write(sdk::LogLevel, std::string_view message) override { lines.emplace_back(message); }
  bool mentions(std::string_view text) const {
    for (const std::string& line : lines) {
      if (line.find(text) != std::string::npos) return true;
    }
    return false;
  }
  std::vector<std::string> lines;
};

class TestServer final : public sdk::ServerContext {
 public:
  // The hook chains as the test wants them: called for every stage run; `next` when unset.
  std::function<sdk::Verdict(sdk::Stage, sdk::HookContext&)> hooks;
  // The store, when the test has one.
  sdk::MailStore* mail_store = nullptr;
  RecordingLog recorded;
  // The users mailbox_changed() was told of, in order, and the counters.
  std::vector<std::string> changed;
  std::vector<std::pair<std::string, std::int64_t>> counted;

  std::string_view hostname() const override { return "mx.example.test"; }
  sdk::MailStore& store() override {
    if (mail_store == nullptr) throw std::logic_error("no store in this test");
    return *mail_store;
  }
  sdk::Log& log() override { return recorded; }
  sdk::Task<sdk::Verdict> run_hooks(sdk::Stage stage, sdk::HookContext& context) override {
    co_return hooks ? hooks(stage, context) : sdk::Verdict::next();
  }
  sdk::Task<void> offload(std::function<void()> work) override {
    work();
    co_return;
  }
  sdk::Task<sdk::LoginResult> authenticate(const sdk::ClientInfo&, std::string_view, std::string_view) override {
    throw std::logic_error("no logins in this test");
  }
  sdk::Task<std::shared_ptr<sdk::Connection>> connect(std::string, std::uint16_t, sdk::ClientTls,
                                                      std::string& error) override {
    error = "no network in this test";
    co_return nullptr;
  }
  sdk::Task<sdk::DnsAnswer> resolve(std::string name, sdk::DnsType type) override {
    if (name == "policy.example.test" && type == sdk::DnsType::txt) {
      co_return sdk::DnsAnswer{sdk::DnsAnswer::Status::ok, {{0, "v=block"}}, {}};
    }
    co_return sdk::DnsAnswer{sdk::DnsAnswer::Status::no_domain, {}, {}};
  }
  void mailbox_changed(const std::vector<std::string>& users) override {
    changed.insert(changed.end(), users.begin(), users.end());
  }
  void count(std::string_view name, std::int64_t delta) override { counted.emplace_back(name, delta); }
  std::vector<std::pair<std::string, std::int64_t>> counters() const override { return counted; }
  sdk::Task<sdk::WakeReason> wait_for_news(sdk::Connection&, std::string_view, std::chrono::seconds) override {
    throw std::logic_error("no news in this test");
  }
};

// Runs a coroutine to its end on a loop of its own and returns what it returned.
template <typename T>
T run_to_end(sdk::Task<T> task) {
  boost::asio::io_context loop;
  std::optional<T> result;
  std::exception_ptr failure;
  boost::asio::co_spawn(loop, std::move(task), [&](std::exception_ptr error, T value) {
    failure = error;
    if (!error) result.emplace(std::move(value));
  });
  loop.run();
  if (failure) std::rethrow_exception(failure);
  return std::move(*result);
}

}  // namespace tern::testing
