// Entry point of the outbound plugin: reads [plugin.outbound] and its [[plugin.outbound.route]] tables and
// registers the queue runner as a service.
#include <fmt/format.h>

#include "queue_runner.hpp"
#include "tern/sdk/plugin.hpp"
#include "tern/sdk/text.hpp"

namespace {

using tern::outbound::Route;
using tern::outbound::Settings;

std::chrono::seconds seconds_of(const tern::sdk::ConfigSection& section, const char* key, std::int64_t fallback,
                                std::int64_t lowest) {
  const std::int64_t value = section.get_integer(key).value_or(fallback);
  if (value < lowest || value > 365LL * 24 * 3600)
    section.fail(key, fmt::format("must be {} to 31536000 seconds", lowest));
  return std::chrono::seconds(value);
}

std::uint16_t port_of(const tern::sdk::ConfigSection& section, std::int64_t fallback) {
  const std::int64_t port = section.get_integer("port").value_or(fallback);
  if (port < 1 || port > 65535) section.fail("port", "must be 1 to 65535");
  return static_cast<std::uint16_t>(port);
}

// The next-hop part of a route: relay host, port, TLS and login.
void read_relay(const tern::sdk::ConfigSection& section, Route& route) {
  route.host = section.get_string("host").value_or("");
  if (route.host.empty()) section.fail("host", "is required for a relay route");
  const std::string tls = section.get_string("tls").value_or("starttls");
  if (tls == "starttls") {
    route.tls = Route::Tls::required;
  } else if (tls == "opportunistic") {
    route.tls = Route::Tls::opportunistic;
  } else if (tls == "implicit") {
    route.tls = Route::Tls::implicit;
  } else if (tls == "none") {
    route.tls = Route::Tls::none;
  } else {
    section.fail("tls", "must be \"starttls\", \"opportunistic\", \"implicit\" or \"none\" for a relay");
  }
  route.port = port_of(section, route.tls == Route::Tls::implicit ? 465 : 25);
  route.verify = section.get_bool("verify").value_or(true);
  route.user = section.get_string("user").value_or("");
  route.password = section.get_string("password").value_or("");
  if (route.user.empty() != route.password.empty()) section.fail("user", "user and password go together");
  if (!route.user.empty() && route.tls == Route::Tls::none) {
    section.fail("tls", "must not be \"none\" when the relay asks for a password: it would cross the network in clear");
  }
  route.name = fmt::format("relay {}:{}", route.host, route.port);
}

void read_mx_tls(const tern::sdk::ConfigSection& section, Route& route) {
  const std::string tls = section.get_string("tls").value_or("opportunistic");
  if (tls == "opportunistic") {
    route.tls = Route::Tls::opportunistic;
  } else if (tls == "starttls") {
    route.tls = Route::Tls::required;
  } else if (tls == "none") {
    route.tls = Route::Tls::none;
  } else {
    section.fail("tls", "must be \"opportunistic\", \"starttls\" or \"none\" for delivery by MX");
  }
  route.name = "mx";
}

Route read_route(const tern::sdk::ConfigSection& section) {
  Route route;
  route.id = section.get_string("name").value_or("");
  const std::optional<std::vector<std::string>> domains = section.get_strings("domains");
  if (!domains || domains->empty()) section.fail("domains", "is required: a list of domains, or [\"*\"] for all");
  for (const std::string& domain : *domains) route.domains.push_back(tern::sdk::lower_ascii(domain));
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
      section.fail("command", "is required for a pipe route: the program's absolute path, then its arguments");
    }
    route.timeout = seconds_of(section, "timeout", 60, 1);
    route.name = "pipe " + route.command.front();
  } else {
    section.fail("via", "must be \"mx\", \"relay\", \"hold\" or \"pipe\"");
  }
  return route;
}

}  // namespace

TERN_PLUGIN("outbound", "0.1.0", "service:outbound") {
  const tern::sdk::ConfigSection& config = registrar.config();
  auto settings = std::make_shared<Settings>();
  settings->mx_port = port_of(config, 25);
  if (const std::optional<std::vector<std::int64_t>> retries = config.get_integers("retry_after")) {
    if (retries->empty()) config.fail("retry_after", "must list at least one number of seconds");
    settings->retry_after.clear();
    for (std::int64_t seconds : *retries) {
      if (seconds < 1 || seconds > 7 * 24 * 3600) config.fail("retry_after", "each must be 1 to 604800 seconds");
      settings->retry_after.emplace_back(seconds);
    }
  }
  settings->expire_after = seconds_of(config, "expire_after", 5 * 24 * 3600, 1);
  settings->delay_warning_after = seconds_of(config, "delay_warning_after", 0, 0);
  settings->helo_name = config.get_string("helo_name").value_or("");
  const std::int64_t per_destination = config.get_integer("max_connections_per_host").value_or(20);
  if (per_destination < 1 || per_destination > 1000) config.fail("max_connections_per_host", "must be 1 to 1000");
  settings->connections_per_destination = static_cast<std::size_t>(per_destination);
  const std::int64_t connections = config.get_integer("max_connections").value_or(100);
  if (connections < 1 || connections > 10000) config.fail("max_connections", "must be 1 to 10000");
  settings->connections = static_cast<std::size_t>(connections);
  for (const tern::sdk::ConfigSection* section : config.get_tables("route")) {
    Route route = read_route(*section);
    if (!route.id.empty() && (route.id == "mx" || settings->route_named(route.id) != nullptr)) {
      section->fail("name", fmt::format("\"{}\" names another route already", route.id));
    }
    settings->routes.push_back(std::move(route));
  }
  read_mx_tls(config, settings->by_mx);
  registrar.add_service(std::make_shared<tern::outbound::QueueRunner>(std::move(settings)));
}
