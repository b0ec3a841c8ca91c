// The Received-SPF header field (RFC 7208 section 9.1) that records a check's result in the message.
#pragma once

#include <string>

#include "spf_check.hpp"

namespace tern::spf {

// The field's value: the result, a comment saying it in words, and the key-value pairs (client-ip,
// envelope-from, helo, receiver, identity, and mechanism or problem).
std::string received_spf(const Outcome& outcome, const Query& query);

}  // namespace tern::spf
