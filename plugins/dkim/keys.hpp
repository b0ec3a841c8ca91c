// DKIM signing keys: made, kept and read under the data folder (data_dir/dkim/DOMAIN/SELECTOR.pem, readable by
// the server's user only), and the DNS record that publishes each one's public half.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

struct evp_pkey_st;

namespace tern::dkim {

enum class Algorithm { rsa, ed25519 };

struct SigningKey {
  std::string domain;  // lower-case
  std::string selector;
  Algorithm algorithm = Algorithm::rsa;
  std::shared_ptr<evp_pkey_st> key;  // the private key; thread-safe to sign with
  std::filesystem::file_time_type made;
};

// The folder of a domain's keys.
std::filesystem::path key_folder(const std::filesystem::path& data_dir, const std::string& domain);
// Makes a key (RSA of 2048 bits, or Ed25519), writes it as DOMAIN/SELECTOR.pem, mode 0600; throws
// std::runtime_error when the file exists already or cannot be written.
SigningKey make_key(const std::filesystem::path& data_dir, const std::string& domain, const std::string& selector,
                    Algorithm algorithm);
// Every key under data_dir/dkim, by domain then selector; a file that is not a key is reported in `problems`.
std::vector<SigningKey> read_keys(const std::filesystem::path& data_dir, std::vector<std::string>& problems);
// The TXT record to publish at SELECTOR._domainkey.DOMAIN: "v=DKIM1; k=rsa; p=...".
std::string dns_record(const SigningKey& key);
// The record as a zone file line, split into strings of at most 255 octets as DNS needs.
std::string zone_line(const SigningKey& key);

}  // namespace tern::dkim
