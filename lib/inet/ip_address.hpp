// IP addresses and networks as the checks of a client need them (SPF, DNS block lists): parsed, compared by
// prefix, and written as the dotted labels that DNS names are made of.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tern::inet {

// An IPv4 or IPv6 address. A client's IPv4-mapped IPv6 address (::ffff:192.0.2.1) is held as the IPv4 one.
struct Address {
  bool v6 = false;
  std::array<std::uint8_t, 16> bytes{};  // IPv4 uses the first 4

  // `map_v4`: an IPv4-mapped IPv6 address becomes its IPv4 address (for clients; a configured network keeps
  // the form it was written in).
  static std::optional<Address> parse(std::string_view text, bool map_v4 = true);
  // Whether the first `bits` bits agree; addresses of two families never do.
  bool in_network(const Address& network, int bits) const;
  // "192.0.2.1", or the IPv6 address in its short form.
  std::string text() const;
  // "192.0.2.1", or the 32 nibbles of an IPv6 address separated by dots, most significant first.
  std::string dotted() const;
  // dotted() backwards: the labels of a reverse (PTR) or block-list name, "1.2.0.192".
  std::string reversed() const;
  // The name of the address's PTR record: "1.2.0.192.in-addr.arpa", or its ip6.arpa name.
  std::string reverse_name() const;
};

// A network as written in a config: "192.0.2.0/24", "2001:db8::/32", or an address alone (all its bits).
struct Network {
  Address address;
  int bits = 0;

  static std::optional<Network> parse(std::string_view text);
  bool contains(const Address& candidate) const { return candidate.in_network(address, bits); }
};

}  // namespace tern::inet
