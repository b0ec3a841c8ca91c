// Password hashes: argon2id, salted, in the PHC string form ("$argon2id$v=19$m=...").
#pragma once

#include <string>
#include <string_view>

namespace tern::auth {

// Slow on purpose (tens of milliseconds): call it off the event loops.
std::string hash_password(std::string_view password);

// False for a wrong password and for a hash this build cannot read.
bool verify_password(std::string_view hash, std::string_view password);

}  // namespace tern::auth
