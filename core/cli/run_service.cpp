// A service's on-demand pass and plugins' commands, in the administrative command's own process, with the same
// context the server gives a service: the store, the hooks of the configuration, outbound connections.
#include "cli/run_service.hpp"

#include <utility>  // before Boost.Asio: Boost 1.74's awaitable.hpp needs it with g++ 12

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/thread_pool.hpp>
#include <iostream>

#include "auth/auth_throttle.hpp"
#include "auth/login_cache.hpp"
#include "cli/store_session.hpp"
#include "privileges/run_as.hpp"
#include "server/service_context.hpp"
#include "tern/sdk/command.hpp"

namespace tern::cli {

namespace asio = boost::asio;

namespace {

// Runs `body` with a ServiceContext named `name`, as the server would give one to a service, on a loop and a small
// worker pool of this process. Ctrl-C or a kill tells it to stop (ServiceContext::stopping).
int run_in_process(const LoadedConfig& loaded, const std::string& name,
                   std::function<sdk::Task<int>(sdk::ServiceContext&)> body) {
  const std::shared_ptr<const loader::Generation>& generation = loaded.generation;
  const config::ServerConfig& config = *generation->config;
  std::filesystem::create_directories(config.data_dir);
  privileges::settle(config, false);
  std::unique_ptr<sdk::MailStore> store = generation->stores.at(config.store_backend)->open(config.data_dir);
  asio::io_context loop(1);
  asio::thread_pool workers(2);
  auth::AuthThrottle throttle(config.limits.max_auth_failures, config.limits.auth_failure_window);
  auth::LoginCache logins(config.limits.auth_cache_ttl);
  server::MailboxWatch watch;
  dns::Resolver resolver(config.dns_servers);
  metrics::Counters counters;  // this run's own: nobody reads them
  std::atomic<bool> stopping{false};
  asio::signal_set signals(loop, SIGINT, SIGTERM);
  signals.async_wait([&stopping](const boost::system::error_code& error, int) {
    if (!error) stopping = true;
  });
  auto client_tls = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  client_tls->set_default_verify_paths();
  int code = 1;
  asio::co_spawn(
      loop,
      [&]() -> asio::awaitable<void> {
        auto session = std::make_unique<server::SessionContext>(generation, *store, workers, throttle, logins, watch,
                                                                resolver, counters, client_tls, stopping, name);
        server::ServiceContext context(std::move(session), std::make_shared<const std::atomic<bool>>(false), stopping,
                                       config.data_dir);
        try {
          const int result = co_await body(context);
          code = result;
        } catch (const std::exception& error) {
          spdlog::error("{}: {}", name, error.what());
          code = 1;
        }
        signals.cancel();
      },
      asio::detached);
  loop.run();
  workers.join();
  return code;
}

}  // namespace

int run_service_once(const std::filesystem::path& config_file, const std::string& service, const std::string& target) {
  // A config error is thrown as config::ConfigInvalid and answered by the command line (exit code 2).
  const LoadedConfig loaded = load_everything(config_file);
  const auto& services = loaded.generation->services;
  const auto found = std::find_if(services.begin(), services.end(),
                                  [&](const auto& candidate) { return candidate->name() == service; });
  if (found == services.end()) {
    std::cerr << "no service \"" << service << "\" is configured (is its plugin loaded and given something to do?)\n";
    return 2;
  }
  return run_in_process(loaded, service,
                        [&](sdk::ServiceContext& context) { return (*found)->run_once(context, target); });
}

std::optional<int> run_plugin_command(const std::filesystem::path& config_file, const std::string& name,
                                      std::vector<std::string> arguments) {
  const LoadedConfig loaded = load_everything(config_file);
  const auto found = loaded.generation->commands.find(name);
  if (found == loaded.generation->commands.end()) return std::nullopt;
  const std::shared_ptr<const sdk::Command> command = found->second;
  return run_in_process(loaded, name,
                        [&](sdk::ServiceContext& context) { return command->run(context, std::move(arguments)); });
}

}  // namespace tern::cli
