#include "tls/certificate.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <stdexcept>

namespace tern::tls {
namespace {

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;

void fail(const std::string& what) {
  throw std::runtime_error("making a self-signed certificate: " + what);
}

// Writes a PEM file through a FILE* opened on a descriptor with the given mode.
template <typename Write>
void write_pem(const std::filesystem::path& path, mode_t mode, Write write) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) fail("cannot create " + path.string());
  FILE* file = ::fdopen(fd, "w");
  if (file == nullptr) {
    ::close(fd);
    fail("cannot open " + path.string());
  }
  bool ok = write(file) == 1;
  ok = std::fflush(file) == 0 && ::fsync(fd) == 0 && ok;
  std::fclose(file);
  if (!ok) fail("cannot write " + path.string());
}

}  // namespace

bool ensure_certificate(const std::filesystem::path& cert, const std::filesystem::path& key,
                        const std::string& hostname) {
  bool have_cert = std::filesystem::exists(cert);
  bool have_key = std::filesystem::exists(key);
  if (have_cert && have_key) return false;
  if (have_cert != have_key) {
    throw std::runtime_error("TLS: " + (have_cert ? key : cert).string() + " is missing but " +
                             (have_cert ? cert : key).string() + " exists; give both or neither");
  }
  std::filesystem::create_directories(cert.parent_path().empty() ? "." : cert.parent_path());
  std::filesystem::create_directories(key.parent_path().empty() ? "." : key.parent_path());

  PkeyPtr pkey(EVP_EC_gen("P-256"));
  if (!pkey) fail("key generation failed");
  X509Ptr x509(X509_new());
  if (!x509) fail("out of memory");
  X509_set_version(x509.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x509.get()), static_cast<long>(::time(nullptr)));
  X509_gmtime_adj(X509_getm_notBefore(x509.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x509.get()), 10L * 365 * 24 * 3600);
  X509_set_pubkey(x509.get(), pkey.get());
  X509_NAME* name = X509_get_subject_name(x509.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(hostname.c_str()), -1,
                             -1, 0);
  X509_set_issuer_name(x509.get(), name);
  X509V3_CTX context;
  X509V3_set_ctx_nodb(&context);
  X509V3_set_ctx(&context, x509.get(), x509.get(), nullptr, nullptr, 0);
  std::string san = "DNS:" + hostname;
  X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &context, NID_subject_alt_name, san.c_str());
  if (extension != nullptr) {
    X509_add_ext(x509.get(), extension, -1);
    X509_EXTENSION_free(extension);
  }
  if (X509_sign(x509.get(), pkey.get(), EVP_sha256()) == 0) fail("signing failed");

  write_pem(key, 0600,
            [&](FILE* file) { return PEM_write_PrivateKey(file, pkey.get(), nullptr, nullptr, 0, nullptr, nullptr); });
  write_pem(cert, 0644, [&](FILE* file) { return PEM_write_X509(file, x509.get()); });
  return true;
}

}  // namespace tern::tls
