// The server's TLS contexts: the default certificate and one per host name, chosen by SNI (RFC 6066), so
// that one server can present the right certificate for each of its domains.
#pragma once

#include <utility>  // before Boost.Asio: Boost 1.74's awaitable.hpp needs it with g++ 12

#include <boost/asio/ssl/context.hpp>
#include <map>
#include <memory>
#include <string>

#include "config/server_config.hpp"

namespace tern::tls {

class ServerContexts {
 public:
  // Loads the default certificate and every [[tls.host]] one; TLS 1.2 or newer. Throws on a bad file.
  explicit ServerContexts(const config::ServerConfig& config);
  ServerContexts(const ServerContexts&) = delete;
  ServerContexts& operator=(const ServerContexts&) = delete;

  // The context connections start with; it switches to a host's own during the handshake.
  const std::shared_ptr<boost::asio::ssl::context>& default_context() const { return default_; }
  // The context for a client's SNI name: an exact host, then a "*.domain" one for a name one label deeper;
  // nullptr when none matches (the default certificate is kept).
  boost::asio::ssl::context* for_name(const std::string& name) const;

 private:
  std::shared_ptr<boost::asio::ssl::context> default_;
  std::map<std::string, std::shared_ptr<boost::asio::ssl::context>, std::less<>> hosts_;
};

}  // namespace tern::tls
