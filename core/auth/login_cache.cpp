#include "auth/login_cache.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <stdexcept>

#include "tern/sdk/text.hpp"

namespace tern::auth {

LoginCache::LoginCache(std::chrono::seconds ttl, std::size_t capacity) : ttl_(ttl), capacity_(capacity) {
  if (RAND_bytes(key_.data(), static_cast<int>(key_.size())) != 1)
    throw std::runtime_error("no random bytes for a key");
}

LoginCache::Digest LoginCache::digest(std::string_view stored_hash, std::string_view password) const {
  // A PHC string holds no NUL: one between the two keeps ("ab", "c") apart from ("a", "bc").
  std::string input(stored_hash);
  input += '\0';
  input += password;
  Digest out{};
  unsigned int length = 0;
  HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()), reinterpret_cast<const unsigned char*>(input.data()),
       input.size(), out.data(), &length);
  OPENSSL_cleanse(input.data(), input.size());
  return out;
}

bool LoginCache::verified(std::string_view user, std::string_view stored_hash, std::string_view password,
                          Clock::time_point now) {
  if (ttl_.count() == 0) return false;
  const Digest given = digest(stored_hash, password);
  std::lock_guard lock(mutex_);
  const auto found = entries_.find(sdk::lower_ascii(user));
  if (found == entries_.end() || found->second.expires <= now) return false;
  return CRYPTO_memcmp(found->second.digest.data(), given.data(), given.size()) == 0;
}

void LoginCache::remember(std::string_view user, std::string_view stored_hash, std::string_view password,
                          Clock::time_point now) {
  if (ttl_.count() == 0) return;
  const Digest remembered = digest(stored_hash, password);
  std::lock_guard lock(mutex_);
  if (entries_.size() >= capacity_) {
    std::erase_if(entries_, [&](const auto& entry) { return entry.second.expires <= now; });
    // Still full of live entries: start again rather than track which is oldest; a miss costs one check.
    if (entries_.size() >= capacity_) entries_.clear();
  }
  entries_.insert_or_assign(sdk::lower_ascii(user), Entry{remembered, now + ttl_});
}

}  // namespace tern::auth
