#include "ip_address.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <algorithm>

namespace tern::inet {

std::optional<Address> Address::parse(std::string_view text, bool map_v4) {
  Address address;
  const std::string copy(text);
  if (inet_pton(AF_INET, copy.c_str(), address.bytes.data()) == 1) return address;
  if (inet_pton(AF_INET6, copy.c_str(), address.bytes.data()) != 1) return std::nullopt;
  address.v6 = true;
  static constexpr std::uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (map_v4 && std::equal(std::begin(kMapped), std::end(kMapped), address.bytes.begin())) {
    std::rotate(address.bytes.begin(), address.bytes.begin() + 12, address.bytes.end());
    std::fill(address.bytes.begin() + 4, address.bytes.end(), 0);
    address.v6 = false;
  }
  return address;
}

bool Address::in_network(const Address& network, int bits) const {
  if (v6 != network.v6) return false;
  for (std::size_t i = 0; bits > 0; ++i, bits -= 8) {
    const int mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((bytes[i] & mask) != (network.bytes[i] & mask)) return false;
  }
  return true;
}

std::string Address::text() const {
  if (!v6) return fmt::format("{}.{}.{}.{}", bytes[0], bytes[1], bytes[2], bytes[3]);
  char out[INET6_ADDRSTRLEN] = {};
  inet_ntop(AF_INET6, bytes.data(), out, sizeof out);
  return out;
}

std::string Address::dotted() const {
  if (!v6) return text();
  std::string out;
  for (const std::uint8_t byte : bytes) out += fmt::format("{:x}.{:x}.", byte >> 4, byte & 0xf);
  out.pop_back();
  return out;
}

std::string Address::reversed() const {
  const std::string forward = dotted();
  std::string out;
  std::size_t end = forward.size();
  while (end > 0) {
    const std::size_t dot = forward.rfind('.', end - 1);
    const std::size_t start = dot == std::string::npos ? 0 : dot + 1;
    if (!out.empty()) out += '.';
    out.append(forward, start, end - start);
    end = dot == std::string::npos ? 0 : dot;
  }
  return out;
}

std::string Address::reverse_name() const {
  return reversed() + (v6 ? ".ip6.arpa" : ".in-addr.arpa");
}

std::optional<Network> Network::parse(std::string_view text) {
  const std::size_t slash = text.find('/');
  const std::optional<Address> address = Address::parse(text.substr(0, slash), false);
  if (!address) return std::nullopt;
  const int largest = address->v6 ? 128 : 32;
  if (slash == std::string_view::npos) return Network{*address, largest};
  const std::string_view digits = text.substr(slash + 1);
  if (digits.empty() || digits.size() > 3 || digits.find_first_not_of("0123456789") != std::string_view::npos) {
    return std::nullopt;
  }
  const int bits = std::stoi(std::string(digits));
  if (bits > largest) return std::nullopt;
  return Network{*address, bits};
}

}  // namespace tern::inet
