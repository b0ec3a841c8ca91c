#include "relay_networks.hpp"

#include <arpa/inet.h>

#include <charconv>

namespace tern::smtp {
namespace {

// The address's family and bytes; an IPv4-mapped IPv6 address counts as IPv4.
std::optional<std::pair<int, std::array<unsigned char, 16>>> parse_address(std::string_view text) {
  std::string terminated(text);
  std::array<unsigned char, 16> bytes{};
  if (inet_pton(AF_INET, terminated.c_str(), bytes.data()) == 1) return std::pair{AF_INET, bytes};
  if (inet_pton(AF_INET6, terminated.c_str(), bytes.data()) == 1) {
    static constexpr unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::equal(std::begin(kMapped), std::end(kMapped), bytes.begin())) {
      std::array<unsigned char, 16> v4{};
      std::copy(bytes.begin() + 12, bytes.end(), v4.begin());
      return std::pair{AF_INET, v4};
    }
    return std::pair{AF_INET6, bytes};
  }
  return std::nullopt;
}

}  // namespace

bool RelayNetworks::add(std::string_view cidr) {
  const std::size_t slash = cidr.find('/');
  auto address = parse_address(cidr.substr(0, slash));
  if (!address) return false;
  const unsigned width = address->first == AF_INET ? 32 : 128;
  unsigned prefix = width;
  if (slash != std::string_view::npos) {
    std::string_view digits = cidr.substr(slash + 1);
    auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
    if (digits.empty() || error != std::errc() || end != digits.data() + digits.size() || prefix > width) return false;
  }
  networks_.push_back({address->first, address->second, prefix});
  return true;
}

bool RelayNetworks::contains(std::string_view text) const {
  auto address = parse_address(text);
  if (!address) return false;
  for (const Network& network : networks_) {
    if (network.family != address->first) continue;
    unsigned bits = network.prefix;
    std::size_t index = 0;
    bool match = true;
    for (; bits >= 8; bits -= 8, ++index) {
      if (network.bytes[index] != address->second[index]) {
        match = false;
        break;
      }
    }
    if (match && bits > 0) {
      const auto mask = static_cast<unsigned char>(0xff << (8 - bits));
      match = (network.bytes[index] & mask) == (address->second[index] & mask);
    }
    if (match) return true;
  }
  return false;
}

}  // namespace tern::smtp
