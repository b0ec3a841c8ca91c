// The server's configuration file: parsed and validated once, then read-only.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "tern/sdk/protocol.hpp"

namespace toml {
inline namespace v3 {
class table;
}
}  // namespace toml

namespace tern::config {

// Every error found in a file, each as "file:line: key: what is wrong". The CLI prints them and exits 2.
class ConfigInvalid : public std::runtime_error {
 public:
  explicit ConfigInvalid(std::vector<std::string> errors);
  const std::vector<std::string>& errors() const { return errors_; }

 private:
  std::vector<std::string> errors_;
};

struct Endpoint {
  std::string host;  // an IP literal, without brackets
  std::uint16_t port = 0;
};

struct Listener {
  sdk::ListenerInfo info;
  Endpoint endpoint;
  std::int64_t line = 0;  // of its [[listener]] header, for errors found later
};

// A certificate for one host name, chosen when a client asks for that name (SNI).
struct TlsHost {
  std::string name;  // lower case; "*.example.org" matches one label below example.org
  std::filesystem::path cert;
  std::filesystem::path key;
};

struct LogSettings {
  std::string format = "text";  // text | json
  std::string level = "info";   // debug | info | warn | error
  std::filesystem::path file;   // empty: standard error
};

struct Limits {
  std::int64_t max_connections = 5000;            // in all: an idle session costs about 21 KiB
  std::int64_t max_connections_per_client = 20;   // per client IP address
  std::int64_t max_auth_failures = 10;            // failed logins per client address within the window
  std::chrono::seconds auth_failure_window{900};  // before a failure is forgotten
  std::chrono::seconds auth_cache_ttl{300};       // how long a verified login is remembered; 0: never
};

// [server] user and group: who the server becomes once its ports are bound (privileges/run_as.hpp).
struct RunAs {
  std::string user;
  std::string group;
  unsigned uid = 0;
  unsigned gid = 0;
};

struct ServerConfig {
  std::filesystem::path file;
  std::string hostname;
  std::filesystem::path data_dir;
  unsigned threads = 0;   // event loops; 0 = one per core
  unsigned workers = 16;  // threads for blocking work (store, password hashing); deliveries waiting together
                          // for the disk share one commit, so more waiting threads make bigger batches
  std::chrono::seconds shutdown_grace{30};
  std::optional<RunAs> run_as;  // unset: run as started
  std::vector<Listener> listeners;
  std::filesystem::path tls_cert;  // made self-signed on first start when absent
  std::filesystem::path tls_key;
  std::vector<TlsHost> tls_hosts;
  std::vector<std::filesystem::path> plugin_dirs;
  std::vector<std::string> plugins_disabled;
  std::string store_backend = "sqlite";
  LogSettings log;
  Limits limits;
  std::vector<std::string> dns_servers;  // [dns] servers: "address" or "address:port"; empty: the system's
  // The parsed document, for the plugins' [plugin.<name>] sections.
  std::shared_ptr<const toml::table> document;
};

// Reads and validates a config file; throws ConfigInvalid with every error found. Relative paths are taken
// from the current directory, as the command line gives them.
ServerConfig load_config(const std::filesystem::path& file);

// Parses "127.0.0.1:25" or "[::1]:25"; nullopt when it is not an IP literal with a port.
std::optional<Endpoint> parse_endpoint(std::string_view text);

}  // namespace tern::config
