// Entry point of the outbound plugin: reads [plugin.outbound] and its [[plugin.outbound.route]] tables and
// registers the queue runner as a service.
#include <fmt/format.h>

#include "queue_runner.hpp"
#include "tern/sdk/plugin.hpp"
#include "tern/sdk/text.hpp"

namespace {

using tern::outbound::Route;
using tern::outbound::Settings;

// The longest a queue's durations may be: a year.
constexpr std::chrono::seconds kLongest = std::chrono::days(365);

// The next-hop part of a route: relay host, port, TLS and login.
void read_relay(const tern::sdk::ConfigSection& section, Route& route) {
  route.host = section.get_string("host").value_or("");
  if (route.host.empty()) section.error("host", "is required for a relay route");
  route.tls = section.choice("tls", Route::Tls::required,
                             {{"starttls", Route::Tls::required},
                              {"opportunistic", Route::Tls::opportunistic},
                              {"implicit", Route::Tls::implicit},
                              {"none", Route::Tls::none}});
  route.port = section.port("port", route.tls == Route::Tls::implicit ? 465 : 25);
  route.verify = section.get_bool("verify").value_or(true);
  route.user = section.get_string("user").value_or("");
  route.password = section.get_string("password").value_or("");
  if (route.user.empty() != route.password.empty()) section.error("user", "user and password go together");
  if (!route.user.empty() && route.tls == Route::Tls::none) {
    section.error("tls",
                  "must not be \"none\" when the relay asks for a password: it would cross the network in clear");
  }
  route.name = fmt::format("relay {}:{}", route.host, route.port);
}

void read_mx_tls(const tern::sdk::ConfigSection& section, Route& route) {
  route.tls = section.choice(
      "tls", Route::Tls::opportunistic,
      {{"opportunistic", Route::Tls::opportunistic}, {"starttls", Route::Tls::required}, {"none", Route::Tls::none}});
  route.name = "mx";
}

Route read_route(const tern::sdk::ConfigSection& section) {
  Route route;
  route.id = section.get_string("name").value_or("");
  const std::vector<std::string> domains = section.get_strings("domains").value_or(std::vector<std::string>{});
  if (domains.empty()) section.error("domains", "is required: a list of domains, or [\"*\"] for all");
  for (const std::string& domain : domains) route.domains.push_back(tern::sdk::lower_ascii(domain));
  const std::string via = section.get_string("via").value_or("");
  if (via == "mx") {
    route.via = Route::Via::mx;
    read_mx_tls(section, route);
  } else if (via == "relay") {
    route.via = Route::Via::relay;
    read_relay(section, route);
  } else if (via == "hold") {
    route.via = Route::Via::hold;
    route.name = "hold";
    auto released = std::make_shared<Route>();
    released->domains = route.domains;
    if (section.get_string("host")) {
      released->via = Route::Via::relay;
      read_relay(section, *released);
    } else {
      read_mx_tls(section, *released);
    }
    route.released = std::move(released);
  } else if (via == "pipe") {
    route.via = Route::Via::pipe;
    route.command = section.get_strings("command").value_or(std::vector<std::string>{});
    if (route.command.empty() || route.command.front().empty() || route.command.front().front() != '/') {
      section.error("command", "is required for a pipe route: the program's absolute path, then its arguments");
      route.command = {"/"};
    }
    route.timeout = section.duration("timeout", std::chrono::seconds(60), std::chrono::seconds(1), kLongest);
    route.name = "pipe " + route.command.front();
  } else {
    section.error("via", "must be \"mx\", \"relay\", \"hold\" or \"pipe\"");
  }
  return route;
}

}  // namespace

TERN_PLUGIN("outbound", "0.1.0", "service:outbound") {
  const tern::sdk::ConfigSection& config = registrar.config();
  auto settings = std::make_shared<Settings>();
  settings->mx_port = config.port("port", 25);
  if (const std::optional<std::vector<std::int64_t>> retries = config.get_integers("retry_after")) {
    if (retries->empty()) config.error("retry_after", "must list at least one number of seconds");
    settings->retry_after.clear();
    for (std::int64_t seconds : *retries) {
      if (seconds < 1 || seconds > 7 * 24 * 3600) config.error("retry_after", "each must be 1 to 604800 seconds");
      settings->retry_after.emplace_back(seconds);
    }
  }
  settings->expire_after = config.duration("expire_after", std::chrono::days(5), std::chrono::seconds(1), kLongest);
  settings->delay_warning_after =
      config.duration("delay_warning_after", std::chrono::seconds(0), std::chrono::seconds(0), kLongest);
  settings->helo_name = config.get_string("helo_name").value_or("");
  settings->connections_per_destination =
      static_cast<std::size_t>(config.integer("max_connections_per_host", 20, 1, 1000));
  settings->connections = static_cast<std::size_t>(config.integer("max_connections", 100, 1, 10000));
  for (const tern::sdk::ConfigSection* section : config.get_tables("route")) {
    Route route = read_route(*section);
    if (!route.id.empty() && (route.id == "mx" || settings->route_named(route.id) != nullptr)) {
      section->error("name", fmt::format("\"{}\" names another route already", route.id));
    }
    settings->routes.push_back(std::move(route));
  }
  read_mx_tls(config, settings->by_mx);
  registrar.add_service(std::make_shared<tern::outbound::QueueRunner>(std::move(settings)));
}
