// One remote mailbox the fetch plugin collects, as [[plugin.fetch.account]] describes it.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "tern/sdk/service.hpp"

namespace tern::fetch {

struct Account {
  std::string name;  // names its log lines and its seen-UIDL state ("fetch:<name>")
  std::string server;
  std::uint16_t port = 995;
  sdk::ClientTls tls{sdk::TlsMode::implicit, true};
  std::string user;
  std::string password;
  std::string deliver_to;  // single-drop: the local user every message goes to
  std::chrono::seconds interval{1800};
  bool keep = false;  // leave collected messages on the server (they are remembered, not fetched again)
};

}  // namespace tern::fetch
