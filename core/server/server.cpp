#include "server/server.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <malloc.h>
#include <sys/resource.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <iostream>
#include <list>
#include <mutex>

#include "auth/auth_throttle.hpp"
#include "auth/login_cache.hpp"
#include "config/server_config.hpp"
#include "loader/generation.hpp"
#include "loader/plugin_loader.hpp"
#include "log/logging.hpp"
#include "net/connection_limits.hpp"
#include "net/event_loops.hpp"
#include "net/tcp_connection.hpp"
#include "privileges/run_as.hpp"
#include "server/service_context.hpp"
#include "server/session_context.hpp"
#include "tls/certificate.hpp"
#include "tls/server_contexts.hpp"

namespace tern::server {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

namespace {

// The connections alive now, so that shutdown can reach each one on its own loop.
class ConnectionRegistry {
 public:
  using Entry = std::list<std::weak_ptr<net::TcpConnection>>::iterator;

  Entry add(const std::shared_ptr<net::TcpConnection>& connection) {
    std::lock_guard lock(mutex_);
    return connections_.insert(connections_.end(), connection);
  }
  void remove(Entry entry) {
    std::lock_guard lock(mutex_);
    connections_.erase(entry);
  }
  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return connections_.size();
  }
  // Runs `action` on each live connection, on that connection's loop.
  template <typename Action>
  void for_each(Action action) {
    std::lock_guard lock(mutex_);
    for (auto& weak : connections_) {
      if (auto connection = weak.lock()) {
        asio::post(connection->executor(), [connection, action] { action(*connection); });
      }
    }
  }

 private:
  mutable std::mutex mutex_;
  std::list<std::weak_ptr<net::TcpConnection>> connections_;
};

class Server {
 public:
  Server(config::ServerConfig config, loader::PluginSet plugins, std::shared_ptr<const loader::Generation> generation)
      : startup_config_(std::move(config)),
        plugins_(std::move(plugins)),
        generation_(std::move(generation)),
        loops_(startup_config_.threads, startup_config_.workers),
        limits_(startup_config_.limits.max_connections, startup_config_.limits.max_connections_per_client),
        auth_throttle_(startup_config_.limits.max_auth_failures, startup_config_.limits.auth_failure_window),
        login_cache_(startup_config_.limits.auth_cache_ttl),
        resolver_(startup_config_.dns_servers),
        signals_(main_loop_, SIGTERM, SIGINT, SIGHUP) {}

  int run();

 private:
  std::shared_ptr<const loader::Generation> generation() {
    std::lock_guard lock(generation_mutex_);
    return generation_;
  }
  asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, const config::Listener& listener);
  void start_session(tcp::socket socket, const config::Listener& listener);
  asio::awaitable<void> run_session(std::shared_ptr<net::TcpConnection> connection, const config::Listener& listener,
                                    sdk::ClientInfo client);
  asio::awaitable<void> refuse_busy(tcp::socket socket, std::string reply);
  asio::awaitable<void> handle_signals();
  // Every few minutes, on the worker pool: deletes the store's expired state entries (greylisting, tern.kv).
  asio::awaitable<void> prune_state();
  void reload();
  asio::awaitable<void> shut_down();
  // A generation's services start when it starts serving and are told to stop when it is replaced.
  void start_services(const std::shared_ptr<const loader::Generation>& generation);
  asio::awaitable<void> run_service(std::shared_ptr<const sdk::Service> service,
                                    std::shared_ptr<const loader::Generation> generation,
                                    std::shared_ptr<const std::atomic<bool>> stop);

  config::ServerConfig startup_config_;
  loader::PluginSet plugins_;
  std::mutex generation_mutex_;
  std::shared_ptr<const loader::Generation> generation_;
  std::unique_ptr<sdk::MailStore> store_;
  std::unique_ptr<tls::ServerContexts> tls_;
  net::EventLoops loops_;
  // After loops_, so destroyed before it: an accept still queued here at the end holds a socket of a loop, which
  // must outlive it.
  asio::io_context main_loop_{1};
  net::ConnectionLimits limits_;
  auth::AuthThrottle auth_throttle_;
  auth::LoginCache login_cache_;
  MailboxWatch mailbox_watch_;
  dns::Resolver resolver_;
  metrics::Counters counters_;  // for the process's life, across reloads
  ConnectionRegistry registry_;
  std::list<tcp::acceptor> acceptors_;
  asio::signal_set signals_;
  std::atomic<bool> stopping_{false};
  std::shared_ptr<std::atomic<bool>> services_stop_ = std::make_shared<std::atomic<bool>>(false);
  std::atomic<int> services_running_{0};
  std::shared_ptr<asio::ssl::context> client_tls_;
  std::atomic<std::uint64_t> session_counter_{0};
  std::string session_prefix_ = fmt::format("{:x}", ::time(nullptr) & 0xfffff);
};

int Server::run() {
  const config::ServerConfig& config = startup_config_;
  // One descriptor per connection: the soft limit (often 1024) would cap the server long before memory does.
  rlimit files{};
  if (::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &files);
  }
  std::filesystem::create_directories(config.data_dir);
  std::filesystem::permissions(config.data_dir, std::filesystem::perms::owner_all);
  if (tls::ensure_certificate(config.tls_cert, config.tls_key, config.hostname)) {
    spdlog::warn(
        "made a self-signed certificate for {} in {}; clients will not trust it, replace it with one of "
        "your own",
        config.hostname, config.tls_cert.string());
  }
  // Keys are read, and ports bound, while the server may still be root; everything after runs as [server] user.
  tls_ = std::make_unique<tls::ServerContexts>(config);

  for (const config::Listener& listener : config.listeners) {
    auto& acceptor = acceptors_.emplace_back(main_loop_);
    tcp::endpoint endpoint(asio::ip::make_address(listener.endpoint.host), listener.endpoint.port);
    acceptor.open(endpoint.protocol());
    acceptor.set_option(tcp::acceptor::reuse_address(true));
    if (endpoint.address().is_v6()) acceptor.set_option(asio::ip::v6_only(true));
    error_code error;
    acceptor.bind(endpoint, error);
    if (!error) acceptor.listen(asio::socket_base::max_listen_connections, error);
    if (error) {
      spdlog::error("cannot listen on {} for {}: {}", listener.info.address, listener.info.protocol, error.message());
      return 1;
    }
    spdlog::info("listening on {} ({}, tls {})", listener.info.address, listener.info.protocol,
                 listener.info.tls == sdk::TlsMode::implicit   ? "implicit"
                 : listener.info.tls == sdk::TlsMode::starttls ? "starttls"
                                                               : "none");
    asio::co_spawn(main_loop_, accept_loop(acceptor, listener), asio::detached);
  }
  privileges::settle(config, true);
  store_ = generation_->stores.at(config.store_backend)->open(config.data_dir);
  asio::co_spawn(main_loop_, handle_signals(), asio::detached);
  asio::co_spawn(main_loop_, prune_state(), asio::detached);
  client_tls_ = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  client_tls_->set_default_verify_paths();
  start_services(generation());
  loops_.start();
  spdlog::info("tern serving as {} with {} event loops", config.hostname, loops_.size());
  main_loop_.run();
  loops_.stop();
  spdlog::info("tern stopped");
  return 0;
}

asio::awaitable<void> Server::accept_loop(tcp::acceptor& acceptor, const config::Listener& listener) {
  while (!stopping_) {
    asio::io_context& loop = loops_.next();
    error_code error;
    tcp::socket socket = co_await acceptor.async_accept(asio::any_io_executor(loop.get_executor()),
                                                        asio::redirect_error(asio::use_awaitable, error));
    if (stopping_) co_return;
    if (error) {
      spdlog::warn("accept on {} failed: {}", listener.info.address, error.message());
      // Out of descriptors and the like: pause rather than spin.
      asio::steady_timer pause(main_loop_, std::chrono::milliseconds(100));
      co_await pause.async_wait(asio::use_awaitable);
      continue;
    }
    start_session(std::move(socket), listener);
  }
}

void Server::start_session(tcp::socket socket, const config::Listener& listener) {
  error_code error;
  tcp::endpoint remote = socket.remote_endpoint(error);
  if (error) return;
  auto generation = this->generation();
  sdk::ClientInfo client;
  client.session_id = fmt::format("{}{:06x}", session_prefix_, ++session_counter_);
  client.protocol = listener.info.protocol;
  client.address = remote.address().to_string();
  client.port = remote.port();
  auto executor = socket.get_executor();
  if (!limits_.admit(client.address)) {
    spdlog::warn("[{}] refused {}: connection limit reached", client.session_id, client.address);
    std::string reply = generation->protocols.at(listener.info.protocol)->busy_reply();
    asio::co_spawn(executor, refuse_busy(std::move(socket), std::move(reply)), asio::detached);
    return;
  }
  // Replies are already gathered into one write per pipelined group; Nagle would only hold them back.
  socket.set_option(tcp::no_delay(true), error);
  auto connection = std::make_shared<net::TcpConnection>(std::move(socket), tls_->default_context(), stopping_);
  asio::co_spawn(executor, run_session(std::move(connection), listener, std::move(client)), asio::detached);
}

asio::awaitable<void> Server::refuse_busy(tcp::socket socket, std::string reply) {
  // A short wait at most: a refused client does not get to hold a descriptor.
  asio::steady_timer deadline(socket.get_executor(), std::chrono::seconds(5));
  deadline.async_wait([&socket](const error_code& error) {
    if (!error) socket.close();
  });
  error_code error;
  co_await asio::async_write(socket, asio::buffer(reply), asio::redirect_error(asio::use_awaitable, error));
  deadline.cancel();
  socket.close(error);
}

asio::awaitable<void> Server::run_session(std::shared_ptr<net::TcpConnection> connection,
                                          const config::Listener& listener, sdk::ClientInfo client) {
  auto entry = registry_.add(connection);
  auto generation = this->generation();
  const std::string address = client.address;
  spdlog::info("[{}] connect from {}:{} to {} ({})", client.session_id, client.address, client.port,
               listener.info.address, listener.info.protocol);
  bool ready = true;
  if (listener.info.tls == sdk::TlsMode::implicit) {
    connection->set_read_timeout(std::chrono::seconds(30));
    ready = co_await connection->start_tls();
    connection->set_read_timeout(std::chrono::seconds(300));
    if (!ready) spdlog::info("[{}] TLS handshake failed", client.session_id);
    client.tls = ready;
  }
  if (ready) {
    SessionContext context(generation, *store_, loops_.workers(), auth_throttle_, login_cache_, mailbox_watch_,
                           resolver_, counters_, client_tls_, stopping_, client.session_id);
    context.count("connections_" + listener.info.protocol, 1);
    const std::string session_id = client.session_id;
    try {
      co_await generation->protocols.at(listener.info.protocol)
          ->serve(*connection, context, listener.info, std::move(client));
    } catch (const std::exception& error) {
      spdlog::error("[{}] session ended by an error: {}", session_id, error.what());
    }
    spdlog::info("[{}] disconnect", session_id);
  }
  connection->close();
  registry_.remove(entry);
  limits_.release(address);
}

void Server::start_services(const std::shared_ptr<const loader::Generation>& generation) {
  services_stop_ = std::make_shared<std::atomic<bool>>(false);
  for (const auto& service : generation->services) {
    ++services_running_;
    asio::co_spawn(loops_.next(), run_service(service, generation, services_stop_), asio::detached);
  }
}

asio::awaitable<void> Server::run_service(std::shared_ptr<const sdk::Service> service,
                                          std::shared_ptr<const loader::Generation> generation,
                                          std::shared_ptr<const std::atomic<bool>> stop) {
  const std::string name = service->name();
  auto session =
      std::make_unique<SessionContext>(generation, *store_, loops_.workers(), auth_throttle_, login_cache_,
                                       mailbox_watch_, resolver_, counters_, client_tls_, stopping_, "service " + name);
  ServiceContext context(std::move(session), stop, stopping_, generation->config->data_dir);
  spdlog::info("service {} started", name);
  try {
    co_await service->run(context);
  } catch (const std::exception& error) {
    spdlog::error("service {} ended by an error: {}", name, error.what());
  }
  spdlog::info("service {} stopped", name);
  --services_running_;
}

asio::awaitable<void> Server::handle_signals() {
  for (;;) {
    error_code error;
    int signal = co_await signals_.async_wait(asio::redirect_error(asio::use_awaitable, error));
    if (error) co_return;
    if (signal == SIGHUP) {
      reload();
      continue;
    }
    spdlog::info("signal {}: shutting down", signal);
    co_await shut_down();
    co_return;
  }
}

void Server::reload() {
  spdlog::info("SIGHUP: reloading {}", startup_config_.file.string());
  try {
    auto config = std::make_shared<const config::ServerConfig>(config::load_config(startup_config_.file));
    auto next = loader::build_generation(plugins_, config);
    std::vector<std::string> fixed;
    const config::ServerConfig& old = startup_config_;
    if (config->data_dir != old.data_dir) fixed.emplace_back("server.data_dir");
    if (config->threads != old.threads) fixed.emplace_back("server.threads");
    if (config->workers != old.workers) fixed.emplace_back("server.workers");
    if (config->listeners.size() != old.listeners.size()) fixed.emplace_back("listener");
    for (std::size_t i = 0; i < std::min(config->listeners.size(), old.listeners.size()); ++i) {
      const auto& a = config->listeners[i].info;
      const auto& b = old.listeners[i].info;
      if (a.address != b.address || a.protocol != b.protocol || a.tls != b.tls ||
          a.allow_plaintext_auth != b.allow_plaintext_auth) {
        fixed.emplace_back("listener");
        break;
      }
    }
    if (config->plugin_dirs != old.plugin_dirs || config->plugins_disabled != old.plugins_disabled) {
      fixed.emplace_back("plugins");
    }
    if (config->store_backend != old.store_backend) fixed.emplace_back("store");
    const auto same_host = [](const config::TlsHost& a, const config::TlsHost& b) {
      return a.name == b.name && a.cert == b.cert && a.key == b.key;
    };
    if (config->tls_cert != old.tls_cert || config->tls_key != old.tls_key ||
        !std::equal(config->tls_hosts.begin(), config->tls_hosts.end(), old.tls_hosts.begin(), old.tls_hosts.end(),
                    same_host)) {
      fixed.emplace_back("tls");
    }
    if (config->shutdown_grace != old.shutdown_grace) fixed.emplace_back("server.shutdown_grace");
    if (config->dns_servers != old.dns_servers) fixed.emplace_back("dns");
    if (config->limits.max_connections != old.limits.max_connections ||
        config->limits.max_connections_per_client != old.limits.max_connections_per_client ||
        config->limits.max_auth_failures != old.limits.max_auth_failures ||
        config->limits.auth_failure_window != old.limits.auth_failure_window) {
      fixed.emplace_back("limits");
    }
    if (config->log.format != old.log.format || config->log.file != old.log.file) fixed.emplace_back("log");
    for (const std::string& key : fixed) spdlog::warn("reload: {} changed; it takes effect at the next restart", key);
    spdlog::default_logger()->set_level(spdlog::level::from_str(config->log.level));
    {
      std::lock_guard lock(generation_mutex_);
      generation_ = next;
    }
    services_stop_->store(true);
    start_services(next);
    spdlog::info("reload done: new sessions use the new configuration");
  } catch (const config::ConfigInvalid& invalid) {
    for (const std::string& line : invalid.errors()) spdlog::error("reload refused: {}", line);
  } catch (const std::exception& error) {
    spdlog::error("reload refused: {}", error.what());
  }
}

asio::awaitable<void> Server::prune_state() {
  // Bounded passes: a large backlog is deleted in steps that never hold the database long.
  constexpr std::size_t kPass = 10'000;
  asio::steady_timer pause(main_loop_);
  while (!stopping_) {
    asio::post(loops_.workers(), [store = store_.get()] {
      try {
        const std::int64_t now = ::time(nullptr);
        std::size_t pruned = 0;
        for (std::size_t pass = kPass; pass == kPass;) pruned += pass = store->state().prune(now, kPass);
        if (pruned > 0) spdlog::debug("pruned {} expired state entries", pruned);
      } catch (const std::exception& error) {
        spdlog::warn("pruning expired state entries failed: {}", error.what());
      }
    });
    pause.expires_after(std::chrono::minutes(5));
    error_code ignored;
    co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  }
}

asio::awaitable<void> Server::shut_down() {
  stopping_ = true;
  for (tcp::acceptor& acceptor : acceptors_) {
    error_code ignored;
    acceptor.close(ignored);
  }
  services_stop_->store(true);
  // Sessions waiting for a command are told goodbye now; the others finish what they are doing, and so do
  // the services.
  registry_.for_each([](net::TcpConnection& connection) { connection.interrupt_idle_wait(); });
  auto deadline = std::chrono::steady_clock::now() + startup_config_.shutdown_grace;
  asio::steady_timer tick(main_loop_);
  while ((registry_.size() > 0 || services_running_ > 0) && std::chrono::steady_clock::now() < deadline) {
    tick.expires_after(std::chrono::milliseconds(20));
    co_await tick.async_wait(asio::use_awaitable);
  }
  if (registry_.size() > 0) {
    spdlog::warn("closing {} sessions still open after {}s", registry_.size(), startup_config_.shutdown_grace.count());
    registry_.for_each([](net::TcpConnection& connection) { connection.close(); });
    auto hard_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (registry_.size() > 0 && std::chrono::steady_clock::now() < hard_deadline) {
      tick.expires_after(std::chrono::milliseconds(20));
      co_await tick.async_wait(asio::use_awaitable);
    }
  }
  signals_.cancel();
  main_loop_.stop();
}

}  // namespace

int serve(const std::filesystem::path& config_file) {
  // Large blocks (argon2id's 19 MiB per login, a big FETCH's output) come from mmap and go back to the system
  // when freed. Left to itself glibc raises this threshold after the first such free, and each worker thread's
  // heap then keeps its last 19 MiB for good: hundreds of MiB for nothing on a busy server.
  mallopt(M_MMAP_THRESHOLD, 1024 * 1024);
  config::ServerConfig config;
  try {
    config = config::load_config(config_file);
  } catch (const config::ConfigInvalid& invalid) {
    for (const std::string& line : invalid.errors()) std::cerr << line << '\n';
    return 2;
  }
  try {
    logging::configure(config.log);
  } catch (const std::exception& error) {
    std::cerr << config_file.string() << ": log.file: " << error.what() << '\n';
    return 2;
  }
  loader::PluginSet plugins = loader::load_plugins(config.plugin_dirs, config.plugins_disabled);
  for (const auto& refused : plugins.refused) spdlog::error("plugin {}: {}", refused.path.string(), refused.reason);
  for (const auto& plugin : plugins.loaded) {
    spdlog::info("plugin {} {} (SDK {}.{}) loaded from {}", plugin.name, plugin.version, plugin.sdk_major,
                 plugin.sdk_minor, plugin.path.string());
  }
  std::shared_ptr<const loader::Generation> generation;
  try {
    generation = loader::build_generation(plugins, std::make_shared<const config::ServerConfig>(config));
  } catch (const config::ConfigInvalid& invalid) {
    for (const std::string& line : invalid.errors()) std::cerr << line << '\n';
    return 2;
  }
  try {
    Server server(std::move(config), std::move(plugins), std::move(generation));
    return server.run();
  } catch (const std::exception& error) {
    spdlog::error("cannot start: {}", error.what());
    return 1;
  }
}

}  // namespace tern::server
