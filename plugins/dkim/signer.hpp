// Signing a message (RFC 6376 section 5; Ed25519 as RFC 8463 says): the DKIM-Signature field for one key,
// relaxed/relaxed, over the body and the header fields that matter to a reader.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "keys.hpp"

namespace tern::dkim {

// The header fields signed when present, in this order. From is listed once more than it appears, so that a
// From added on the way breaks the signature (section 8.15).
inline constexpr const char* kSignedFields[] = {"From",
                                                "Reply-To",
                                                "Subject",
                                                "Date",
                                                "To",
                                                "Cc",
                                                "Message-ID",
                                                "In-Reply-To",
                                                "References",
                                                "MIME-Version",
                                                "Content-Type",
                                                "Content-Transfer-Encoding",
                                                "List-Id",
                                                "List-Unsubscribe",
                                                "List-Unsubscribe-Post"};

// The value of the DKIM-Signature field (all after "DKIM-Signature:") that signs `message` (CRLF line ends)
// with `key`, dated `now` (seconds since the epoch). Throws std::runtime_error when OpenSSL fails.
std::string sign(std::string_view message, const SigningKey& key, std::int64_t now);

}  // namespace tern::dkim
