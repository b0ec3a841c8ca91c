#include "tls/server_contexts.hpp"

#include <openssl/ssl.h>

#include "tern/sdk/text.hpp"

#include <algorithm>

namespace tern::tls {
namespace {

namespace ssl = boost::asio::ssl;

std::shared_ptr<ssl::context> make_context(const std::filesystem::path& cert, const std::filesystem::path& key) {
  auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
  context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                       ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
  context->use_certificate_chain_file(cert.string());
  context->use_private_key_file(key.string(), ssl::context::pem);
  return context;
}

int choose_certificate(SSL* connection, int*, void* argument) {
  const char* name = SSL_get_servername(connection, TLSEXT_NAMETYPE_host_name);
  if (name == nullptr) return SSL_TLSEXT_ERR_OK;
  const std::string lower = sdk::lower_ascii(name);
  if (ssl::context* chosen = static_cast<const ServerContexts*>(argument)->for_name(lower)) {
    SSL_set_SSL_CTX(connection, chosen->native_handle());
  }
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace

ServerContexts::ServerContexts(const config::ServerConfig& config)
    : default_(make_context(config.tls_cert, config.tls_key)) {
  for (const config::TlsHost& host : config.tls_hosts) hosts_.emplace(host.name, make_context(host.cert, host.key));
  if (!hosts_.empty()) {
    SSL_CTX_set_tlsext_servername_callback(default_->native_handle(), choose_certificate);
    SSL_CTX_set_tlsext_servername_arg(default_->native_handle(), this);
  }
}

ssl::context* ServerContexts::for_name(const std::string& name) const {
  if (auto exact = hosts_.find(name); exact != hosts_.end()) return exact->second.get();
  const std::size_t dot = name.find('.');
  if (dot == std::string::npos) return nullptr;
  auto wildcard = hosts_.find("*" + name.substr(dot));
  return wildcard == hosts_.end() ? nullptr : wildcard->second.get();
}

}  // namespace tern::tls
