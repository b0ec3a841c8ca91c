// The smtp plugin's options, read once from [plugin.smtp] at registration and then shared read-only.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>

#include "relay_networks.hpp"

namespace tern::smtp {

struct SmtpSettings {
  std::size_t max_message_size = 25 * 1024 * 1024;  // octets, advertised with SIZE
  std::size_t max_recipients = 100;                 // per message; 452 beyond
  int max_errors = 10;                              // bad commands before 421
  std::chrono::seconds command_timeout{300};        // RFC 5321 section 4.5.3.2.7: five minutes at least
  bool allow_any_sender = false;                    // submission: MAIL FROM need not be the user's own address
  RelayNetworks relay_networks;                     // clients that may relay without AUTH; none by default
  std::set<std::string> relay_domains;              // other domains anyone may send to: we relay for them
};

// The listener's role: MX intake, or submission (AUTH required before MAIL).
enum class Role { mx, submission };

}  // namespace tern::smtp
