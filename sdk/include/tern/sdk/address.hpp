// Mail addresses ("local@domain") as the envelope carries them: their parts, and the check an address a hook
// hands in must pass.
#pragma once

#include <cctype>
#include <string>
#include <string_view>

#include "tern/sdk/text.hpp"

namespace tern::sdk {

// The domain of an address, lower-cased: what follows its last '@' (a quoted local part may hold one). ""
// when there is no '@'.
inline std::string domain_of(std::string_view address) {
  const std::size_t at = address.rfind('@');
  return at == std::string_view::npos ? std::string() : lower_ascii(address.substr(at + 1));
}

// The local part of an address, as written: what comes before its last '@'; the whole text when there is none.
inline std::string_view local_part_of(std::string_view address) {
  return address.substr(0, address.rfind('@'));
}

// A domain name as mail carries it: dot-separated labels of 1 to 63 letters, digits and '-', at most 253 octets.
// With `utf8`, octets of UTF-8 count as letters (an internationalized domain under SMTPUTF8, RFC 6531).
inline bool is_domain_name(std::string_view name, bool utf8 = false) {
  if (name.empty() || name.size() > 253 || name.front() == '.' || name.back() == '.') return false;
  std::size_t label = 0;
  for (char c : name) {
    const auto octet = static_cast<unsigned char>(c);
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
    } else if ((octet < 0x80 && (std::isalnum(octet) || c == '-')) || (utf8 && octet >= 0x80)) {
      if (++label > 63) return false;
    } else {
      return false;
    }
  }
  return true;
}

// Enough of an address to hand to the store and the queue: local@domain, at most 254 octets, without spaces,
// brackets or list separators. What a hook gives (a new sender, a recipient, a redirect) must pass it.
inline bool is_address(std::string_view address) {
  const std::size_t at = address.rfind('@');
  return at != 0 && at != std::string_view::npos && at + 1 != address.size() && address.size() <= 254 &&
         address.find_first_of(" \t\r\n<>,;") == std::string_view::npos;
}

}  // namespace tern::sdk
