// The outbound plugin's configuration, read once per generation from [plugin.outbound] and its
// [[plugin.outbound.route]] tables, then only read.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tern/sdk/service.hpp"

namespace tern::outbound {

// Where mail for some domains goes. The first route whose domains match a recipient's domain decides; a
// domain no route names goes by MX.
struct Route {
  enum class Via { mx, relay, hold, pipe };
  std::vector<std::string> domains;  // lower-case; "*" matches every domain
  Via via = Via::mx;
  // mx: TLS when the peer offers it (`opportunistic`, the default), always (`required`), or never.
  // relay: as configured (none, starttls, implicit); STARTTLS then is required.
  enum class Tls { none, opportunistic, required, implicit };
  Tls tls = Tls::opportunistic;
  bool verify = true;  // relay only: check the relay's certificate (MX hosts' are never checked: RFC 7435)
  std::string host;    // relay
  std::uint16_t port = 25;
  std::string user;  // relay AUTH, when set
  std::string password;
  std::vector<std::string> command;  // pipe: program and arguments
  std::chrono::seconds timeout{60};  // pipe: how long the program may run
  std::string name;                  // for logs: "relay 127.0.0.1:587", "pipe /usr/bin/x", "mx"
  std::string id;                    // the `name` it was given, for route hooks to choose it by; may be empty
  // hold: how a flush of the domain sends its mail: by MX, or to `host` when one is set.
  std::shared_ptr<const Route> released;

  bool matches(const std::string& domain) const;
};

struct Settings {
  std::uint16_t mx_port = 25;  // every MX host is reached on it; only tests change it
  std::vector<std::chrono::seconds> retry_after{std::chrono::minutes(5), std::chrono::minutes(15),
                                                std::chrono::minutes(30)};
  std::chrono::seconds expire_after = std::chrono::hours(24 * 5);
  std::chrono::seconds delay_warning_after{0};  // 0: never
  std::string helo_name;                        // empty: the server's hostname
  std::size_t connections_per_destination = 20;
  std::size_t connections = 100;  // in all
  std::vector<Route> routes;
  Route by_mx;  // the route of a domain no route names

  const Route& route_for(const std::string& domain) const;
  // The route a hook names: one given that name, or "mx". Null when there is none.
  const Route* route_named(const std::string& id) const;
  // When to try again after `attempts` attempts (counting the one that just failed).
  std::chrono::seconds retry_delay(std::uint32_t attempts) const;
};

}  // namespace tern::outbound
