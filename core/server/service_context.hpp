// The server as a plugin's background service sees it (sdk::ServiceContext): what a session gets, plus when to
// stop and a way to wait.
#pragma once

#include <utility>  // before Boost.Asio: Boost 1.74's awaitable.hpp needs it with g++ 12

#include <atomic>
#include <boost/asio/ssl/context.hpp>
#include <memory>

#include "server/session_context.hpp"
#include "tern/sdk/service.hpp"

namespace tern::server {

class ServiceContext final : public sdk::ServiceContext {
 public:
  // `stop` turns true when the service's generation is replaced or the server stops; `server_stopping` is the
  // server's own flag.
  ServiceContext(std::unique_ptr<SessionContext> session, std::shared_ptr<const std::atomic<bool>> stop,
                 const std::atomic<bool>& server_stopping, std::filesystem::path data_dir)
      : session_(std::move(session)),
        stop_(std::move(stop)),
        server_stopping_(server_stopping),
        data_dir_(std::move(data_dir)) {}

  std::string_view hostname() const override { return session_->hostname(); }
  sdk::MailStore& store() override { return session_->store(); }
  sdk::Log& log() override { return session_->log(); }
  sdk::Task<sdk::Verdict> run_hooks(sdk::Stage stage, sdk::HookContext& context) override {
    return session_->run_hooks(stage, context);
  }
  sdk::Task<void> offload(std::function<void()> work) override { return session_->offload(std::move(work)); }
  sdk::Task<sdk::LoginResult> authenticate(const sdk::ClientInfo& client, std::string_view user,
                                           std::string_view password) override {
    return session_->authenticate(client, user, password);
  }
  sdk::Task<sdk::DnsAnswer> resolve(std::string name, sdk::DnsType type) override {
    return session_->resolve(std::move(name), type);
  }
  void mailbox_changed(const std::vector<std::string>& users) override { session_->mailbox_changed(users); }
  void count(std::string_view name, std::int64_t delta) override { session_->count(name, delta); }
  std::vector<std::pair<std::string, std::int64_t>> counters() const override { return session_->counters(); }
  sdk::Task<sdk::WakeReason> wait_for_news(sdk::Connection& connection, std::string_view user,
                                           std::chrono::seconds limit) override {
    return session_->wait_for_news(connection, user, limit);
  }

  bool stopping() const override { return stop_->load() || server_stopping_.load(); }
  sdk::Task<bool> sleep_for(std::chrono::seconds duration) override;
  sdk::Task<std::shared_ptr<sdk::Connection>> connect(std::string host, std::uint16_t port, sdk::ClientTls tls,
                                                      std::string& error) override {
    return session_->connect(std::move(host), port, std::move(tls), error);
  }
  const std::filesystem::path& data_dir() const override { return data_dir_; }

 private:
  std::unique_ptr<SessionContext> session_;
  std::shared_ptr<const std::atomic<bool>> stop_;
  const std::atomic<bool>& server_stopping_;
  std::filesystem::path data_dir_;
};

}  // namespace tern::server
