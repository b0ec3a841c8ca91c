// The client networks allowed to relay without authentication ([plugin.smtp] relay_networks), as CIDR blocks.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tern::smtp {

class RelayNetworks {
 public:
  // Adds "192.0.2.0/24", "2001:db8::/32" or a bare address (a single host). False when it is not one.
  bool add(std::string_view cidr);
  // Whether the client's IP address (as the core reports it) lies in one of the networks.
  bool contains(std::string_view address) const;
  bool empty() const { return networks_.empty(); }

 private:
  struct Network {
    int family;
    std::array<unsigned char, 16> bytes;
    unsigned prefix;
  };
  std::vector<Network> networks_;
};

}  // namespace tern::smtp
