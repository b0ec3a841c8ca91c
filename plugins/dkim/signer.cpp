#include "signer.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <map>
#include <memory>
#include <stdexcept>
#include <vector>

#include "canonical.hpp"
#include "tern/sdk/base64.hpp"
#include "tern/sdk/header.hpp"
#include "tern/sdk/text.hpp"

namespace tern::dkim {

namespace {

std::string sha256(std::string_view data) {
  std::string digest(SHA256_DIGEST_LENGTH, '\0');
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(),
         reinterpret_cast<unsigned char*>(digest.data()));
  return digest;
}

std::string signature(const SigningKey& key, std::string_view data) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  // rsa-sha256 signs the data with SHA-256; ed25519-sha256 signs the SHA-256 digest of the data with pure
  // Ed25519 (RFC 8463 section 3).
  const bool rsa = key.algorithm == Algorithm::rsa;
  const std::string digest = rsa ? std::string() : sha256(data);
  const std::string_view input = rsa ? data : std::string_view(digest);
  const auto* bytes = reinterpret_cast<const unsigned char*>(input.data());
  std::size_t length = 0;
  if (!context ||
      EVP_DigestSignInit(context.get(), nullptr, rsa ? EVP_sha256() : nullptr, nullptr, key.key.get()) != 1 ||
      EVP_DigestSign(context.get(), nullptr, &length, bytes, input.size()) != 1) {
    throw std::runtime_error("OpenSSL could not sign");
  }
  std::string out(length, '\0');
  if (EVP_DigestSign(context.get(), reinterpret_cast<unsigned char*>(out.data()), &length, bytes, input.size()) != 1) {
    throw std::runtime_error("OpenSSL could not sign");
  }
  out.resize(length);
  return out;
}

}  // namespace

std::string sign(std::string_view message, const SigningKey& key, std::int64_t now) {
  const auto [header, body] = sdk::split_header(message);
  // Each name's fields, in order; a name is signed once for each of its fields, from the last up (section 5.4.2).
  std::map<std::string, std::vector<std::string_view>> fields;
  sdk::visit_header_fields(message, [&](const sdk::HeaderField& field) {
    fields[sdk::lower_ascii(field.name)].push_back(field.text);
    return false;
  });
  std::vector<std::string> names;
  std::string signed_text;
  for (const char* name : kSignedFields) {
    const auto found = fields.find(sdk::lower_ascii(name));
    const std::size_t count = found == fields.end() ? 0 : found->second.size();
    for (std::size_t i = count; i > 0; --i) {
      names.push_back(sdk::lower_ascii(name));
      signed_text += canonical_field(found->second[i - 1], Canon::relaxed);
    }
  }
  names.push_back("from");  // once more than there are: no From may be added
  const std::string body_hash = sdk::base64_encode(sha256(canonical_body(body, Canon::relaxed)));
  std::string value = fmt::format(" v=1; a={}; c=relaxed/relaxed; d={}; s={}; t={}; h={}; bh={}; b=",
                                  key.algorithm == Algorithm::rsa ? "rsa-sha256" : "ed25519-sha256", key.domain,
                                  key.selector, now, fmt::join(names, ":"), body_hash);
  std::string own = canonical_field("DKIM-Signature:" + value + "\r\n", Canon::relaxed);
  own.resize(own.size() - 2);  // the signature's own field is hashed without its CRLF
  return value + sdk::base64_encode(signature(key, signed_text + own));
}

}  // namespace tern::dkim
