// SASL PLAIN (RFC 4616), as SMTP AUTH, IMAP AUTHENTICATE and POP3 AUTH receive it.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "tern/sdk/base64.hpp"
#include "tern/sdk/text.hpp"

namespace tern::sdk {

struct PlainCredentials {
  std::string user;
  std::string password;
};

// Decodes the base64 client response "authzid NUL authcid NUL passwd" ("=" is an empty response). nullopt when
// it is not that shape. An authorization identity other than the user itself is not supported: the password
// then comes back empty, so the login fails like a wrong password.
inline std::optional<PlainCredentials> decode_sasl_plain(std::string_view encoded) {
  std::optional<std::string> decoded = encoded == "=" ? std::string() : base64_decode(encoded);
  if (!decoded) return std::nullopt;
  const std::size_t first = decoded->find('\0');
  const std::size_t second = first == std::string::npos ? std::string::npos : decoded->find('\0', first + 1);
  if (second == std::string::npos) return std::nullopt;
  const std::string authzid = decoded->substr(0, first);
  PlainCredentials credentials{decoded->substr(first + 1, second - first - 1), decoded->substr(second + 1)};
  if (!authzid.empty() && lower_ascii(authzid) != lower_ascii(credentials.user)) credentials.password.clear();
  return credentials;
}

}  // namespace tern::sdk
