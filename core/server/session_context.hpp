// The server as one session sees it (sdk::ServerContext): the generation it started with, the store, the
// worker pool and the login check.
#pragma once

#include <utility>  // before Boost.Asio: Boost 1.74's awaitable.hpp needs it with g++ 12

#include <atomic>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "auth/auth_throttle.hpp"
#include "auth/login_cache.hpp"
#include "dns/resolver.hpp"
#include "loader/generation.hpp"
#include "log/logging.hpp"
#include "metrics/counters.hpp"
#include "server/mailbox_watch.hpp"
#include "tern/sdk/protocol.hpp"

namespace tern::server {

class SessionContext final : public sdk::ServerContext {
 public:
  SessionContext(std::shared_ptr<const loader::Generation> generation, sdk::MailStore& store,
                 boost::asio::thread_pool& workers, auth::AuthThrottle& throttle, auth::LoginCache& logins,
                 MailboxWatch& watch, dns::Resolver& resolver, metrics::Counters& counters,
                 std::shared_ptr<boost::asio::ssl::context> client_tls, const std::atomic<bool>& stopping,
                 std::string session_id);

  std::string_view hostname() const override { return generation_->config->hostname; }
  sdk::MailStore& store() override { return store_; }
  sdk::Log& log() override { return log_; }
  sdk::Task<sdk::Verdict> run_hooks(sdk::Stage stage, sdk::HookContext& context) override;
  sdk::Task<void> offload(std::function<void()> work) override;
  sdk::Task<sdk::LoginResult> authenticate(const sdk::ClientInfo& client, std::string_view user,
                                           std::string_view password) override;
  // Outbound TLS uses `client_tls` (the system's roots); `stopping` is the server's own flag.
  sdk::Task<std::shared_ptr<sdk::Connection>> connect(std::string host, std::uint16_t port, sdk::ClientTls tls,
                                                      std::string& error) override;
  sdk::Task<sdk::DnsAnswer> resolve(std::string name, sdk::DnsType type) override {
    return resolver_.resolve(std::move(name), type);
  }
  void mailbox_changed(const std::vector<std::string>& users) override { watch_.notify(users); }
  sdk::Task<sdk::WakeReason> wait_for_news(sdk::Connection& connection, std::string_view user,
                                           std::chrono::seconds limit) override;
  void count(std::string_view name, std::int64_t delta) override { counters_.add(name, delta); }
  std::vector<std::pair<std::string, std::int64_t>> counters() const override { return counters_.snapshot(); }

 private:
  std::shared_ptr<const loader::Generation> generation_;
  sdk::MailStore& store_;
  boost::asio::thread_pool& workers_;
  auth::AuthThrottle& throttle_;
  auth::LoginCache& logins_;
  MailboxWatch& watch_;
  dns::Resolver& resolver_;
  metrics::Counters& counters_;
  std::shared_ptr<boost::asio::ssl::context> client_tls_;
  const std::atomic<bool>& stopping_;
  logging::NamedLog log_;
  // The user last waited for in wait_for_news(), and MailboxWatch's version for them when that wait ended.
  std::optional<std::pair<std::string, std::uint64_t>> news_seen_;
};

}  // namespace tern::server
