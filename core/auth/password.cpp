#include "auth/password.hpp"

#include <argon2.h>
#include <openssl/rand.h>

#include <array>
#include <stdexcept>
#include <vector>

namespace tern::auth {
namespace {

// OWASP's argon2id baseline: 19 MiB, two passes, one lane.
constexpr std::uint32_t kTimeCost = 2;
constexpr std::uint32_t kMemoryKiB = 19 * 1024;
constexpr std::uint32_t kLanes = 1;
constexpr std::size_t kSaltLength = 16;
constexpr std::size_t kHashLength = 32;

}  // namespace

std::string hash_password(std::string_view password) {
  std::array<unsigned char, kSaltLength> salt{};
  if (RAND_bytes(salt.data(), static_cast<int>(salt.size())) != 1)
    throw std::runtime_error("no random bytes for a salt");
  std::size_t length = argon2_encodedlen(kTimeCost, kMemoryKiB, kLanes, kSaltLength, kHashLength, Argon2_id);
  std::vector<char> encoded(length);
  int result = argon2id_hash_encoded(kTimeCost, kMemoryKiB, kLanes, password.data(), password.size(), salt.data(),
                                     salt.size(), kHashLength, encoded.data(), encoded.size());
  if (result != ARGON2_OK) throw std::runtime_error(argon2_error_message(result));
  return std::string(encoded.data());
}

bool verify_password(std::string_view hash, std::string_view password) {
  if (!hash.starts_with("$argon2id$")) return false;
  std::string terminated(hash);
  return argon2id_verify(terminated.c_str(), password.data(), password.size()) == ARGON2_OK;
}

}  // namespace tern::auth
