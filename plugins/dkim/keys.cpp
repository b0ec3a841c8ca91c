#include "keys.hpp"

#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <stdexcept>
#include <tuple>

#include "tern/sdk/base64.hpp"

namespace tern::dkim {

namespace {

std::shared_ptr<evp_pkey_st> owned(EVP_PKEY* key) {
  return std::shared_ptr<evp_pkey_st>(key, EVP_PKEY_free);
}

struct FileCloser {
  void operator()(FILE* file) const { std::fclose(file); }
};

}  // namespace

std::filesystem::path key_folder(const std::filesystem::path& data_dir, const std::string& domain) {
  return data_dir / "dkim" / domain;
}

SigningKey make_key(const std::filesystem::path& data_dir, const std::string& domain, const std::string& selector,
                    Algorithm algorithm) {
  SigningKey made{domain, selector, algorithm, nullptr, {}};
  made.key = owned(algorithm == Algorithm::rsa ? EVP_RSA_gen(2048) : EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  if (!made.key) throw std::runtime_error("OpenSSL could not make the key");
  const std::filesystem::path folder = key_folder(data_dir, domain);
  std::filesystem::create_directories(folder);
  const std::filesystem::path path = folder / (selector + ".pem");
  // O_EXCL through "x": a selector's key is never overwritten, since mail signed with it may still be checked.
  const mode_t previous = ::umask(077);
  std::unique_ptr<FILE, FileCloser> file(std::fopen(path.c_str(), "wx"));
  ::umask(previous);
  if (!file) throw std::runtime_error(fmt::format("{} exists already, or cannot be written", path.string()));
  if (PEM_write_PrivateKey(file.get(), made.key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    throw std::runtime_error(fmt::format("cannot write {}", path.string()));
  }
  file.reset();
  made.made = std::filesystem::last_write_time(path);
  return made;
}

std::vector<SigningKey> read_keys(const std::filesystem::path& data_dir, std::vector<std::string>& problems) {
  std::vector<SigningKey> keys;
  const std::filesystem::path root = data_dir / "dkim";
  std::error_code error;
  if (!std::filesystem::is_directory(root, error)) return keys;
  for (const auto& domain : std::filesystem::directory_iterator(root, error)) {
    if (!domain.is_directory()) continue;
    for (const auto& entry : std::filesystem::directory_iterator(domain.path(), error)) {
      if (entry.path().extension() != ".pem") continue;
      std::unique_ptr<FILE, FileCloser> file(std::fopen(entry.path().c_str(), "r"));
      EVP_PKEY* key = file ? PEM_read_PrivateKey(file.get(), nullptr, nullptr, nullptr) : nullptr;
      const int type = key ? EVP_PKEY_get_base_id(key) : 0;
      if (type != EVP_PKEY_RSA && type != EVP_PKEY_ED25519) {
        EVP_PKEY_free(key);
        problems.push_back(fmt::format("{} is no RSA or Ed25519 private key", entry.path().string()));
        continue;
      }
      keys.push_back({domain.path().filename().string(), entry.path().stem().string(),
                      type == EVP_PKEY_RSA ? Algorithm::rsa : Algorithm::ed25519, owned(key),
                      std::filesystem::last_write_time(entry.path())});
    }
  }
  std::sort(keys.begin(), keys.end(), [](const SigningKey& a, const SigningKey& b) {
    return std::tie(a.domain, a.selector) < std::tie(b.domain, b.selector);
  });
  return keys;
}

std::string dns_record(const SigningKey& key) {
  std::string public_key;
  if (key.algorithm == Algorithm::rsa) {
    // RFC 6376 section 3.6.1: the SubjectPublicKeyInfo, DER.
    unsigned char* der = nullptr;
    const int length = i2d_PUBKEY(key.key.get(), &der);
    if (length <= 0) throw std::runtime_error("OpenSSL could not write the public key");
    public_key.assign(reinterpret_cast<const char*>(der), static_cast<std::size_t>(length));
    OPENSSL_free(der);
  } else {
    // RFC 8463 section 4.2: the raw 32-octet key.
    std::size_t length = 32;
    public_key.resize(length);
    if (EVP_PKEY_get_raw_public_key(key.key.get(), reinterpret_cast<unsigned char*>(public_key.data()), &length) != 1) {
      throw std::runtime_error("OpenSSL could not write the public key");
    }
    public_key.resize(length);
  }
  return fmt::format("v=DKIM1; k={}; p={}", key.algorithm == Algorithm::rsa ? "rsa" : "ed25519",
                     sdk::base64_encode(public_key));
}

std::string zone_line(const SigningKey& key) {
  const std::string record = dns_record(key);
  std::string strings;
  for (std::size_t at = 0; at < record.size(); at += 255) {
    strings += fmt::format("{}\"{}\"", at == 0 ? "" : " ", record.substr(at, 255));
  }
  return fmt::format("{}._domainkey.{}. IN TXT ( {} )", key.selector, key.domain, strings);
}

}  // namespace tern::dkim
