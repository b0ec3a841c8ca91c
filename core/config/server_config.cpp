#include "config/server_config.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <toml++/toml.h>
#include <algorithm>
#include <array>
#include <charconv>

#include "config/table_reader.hpp"
#include "tern/sdk/text.hpp"

namespace tern::config {
namespace {

std::string join_lines(const std::vector<std::string>& errors) {
  std::string text;
  for (const std::string& error : errors) {
    if (!text.empty()) text += '\n';
    text += error;
  }
  return text;
}

bool is_ip_literal(const std::string& host) {
  std::array<unsigned char, 16> buffer{};
  return inet_pton(AF_INET, host.c_str(), buffer.data()) == 1 || inet_pton(AF_INET6, host.c_str(), buffer.data()) == 1;
}

std::string default_hostname() {
  std::array<char, 256> name{};
  if (gethostname(name.data(), name.size() - 1) != 0 || name[0] == '\0') return "localhost";
  return name.data();
}

std::optional<sdk::TlsMode> parse_tls_mode(std::string_view text) {
  if (text == "none") return sdk::TlsMode::none;
  if (text == "starttls") return sdk::TlsMode::starttls;
  if (text == "implicit") return sdk::TlsMode::implicit;
  return std::nullopt;
}

void read_server(TableReader section, ServerConfig& config) {
  config.hostname = section.string("hostname").value_or(default_hostname());
  config.data_dir = section.string("data_dir").value_or("var");
  if (auto threads = section.integer("threads")) {
    if (*threads < 0 || *threads > 256) {
      section.error("threads", "must be between 0 (one per core) and 256");
    } else {
      config.threads = static_cast<unsigned>(*threads);
    }
  }
  if (auto workers = section.integer("workers")) {
    if (*workers < 1 || *workers > 256) {
      section.error("workers", "must be between 1 and 256");
    } else {
      config.workers = static_cast<unsigned>(*workers);
    }
  }
  if (auto grace = section.integer("shutdown_grace")) {
    if (*grace < 0 || *grace > 3600) {
      section.error("shutdown_grace", "must be between 0 and 3600 seconds");
    } else {
      config.shutdown_grace = std::chrono::seconds(*grace);
    }
  }
  if (config.hostname.empty()) section.error("hostname", "must not be empty");
  const std::optional<std::string> user = section.string("user");
  const std::optional<std::string> group = section.string("group");
  if (group && !user) section.error("group", "needs user as well");
  if (user) {
    RunAs run_as;
    run_as.user = *user;
    const passwd* account = ::getpwnam(user->c_str());
    if (account == nullptr) {
      section.error("user", fmt::format("no user \"{}\" on this system", *user));
    } else {
      run_as.uid = account->pw_uid;
      run_as.gid = account->pw_gid;
      if (run_as.uid == 0) section.error("user", "must not be root: it is who the server becomes instead of root");
    }
    if (group) {
      const ::group* found = ::getgrnam(group->c_str());
      if (found == nullptr) {
        section.error("group", fmt::format("no group \"{}\" on this system", *group));
      } else {
        run_as.gid = found->gr_gid;
      }
      run_as.group = *group;
    } else if (account != nullptr) {
      const ::group* primary = ::getgrgid(account->pw_gid);
      run_as.group = primary != nullptr ? primary->gr_name : std::to_string(account->pw_gid);
    }
    config.run_as = run_as;
  }
  section.report_unknown_keys();
}

void read_listeners(const toml::node* node, const std::string& file, std::vector<std::string>& errors,
                    ServerConfig& config) {
  if (node == nullptr) return;
  const toml::array* array = node->as_array();
  if (array == nullptr || !array->is_array_of_tables()) {
    errors.push_back(
        config_error(file, node->source().begin.line, "listener", "must be an array of tables [[listener]]"));
    return;
  }
  std::size_t index = 0;
  for (const toml::node& element : *array) {
    TableReader section(element.as_table(), file, fmt::format("listener[{}]", index++), errors);
    Listener listener;
    listener.line = element.source().begin.line;
    listener.info.protocol = section.string("protocol").value_or("");
    if (listener.info.protocol.empty()) section.error("protocol", "is required (smtp, submission, pop3 or imap)");
    if (auto address = section.string("address")) {
      if (auto endpoint = parse_endpoint(*address)) {
        listener.endpoint = *endpoint;
        listener.info.address = *address;
      } else {
        section.error("address", "must be an IP address and port, such as \"127.0.0.1:2525\" or \"[::1]:2525\"");
      }
    } else {
      section.error("address", "is required");
    }
    if (auto tls = section.string("tls")) {
      if (auto mode = parse_tls_mode(*tls)) {
        listener.info.tls = *mode;
      } else {
        section.error("tls", "must be \"none\", \"starttls\" or \"implicit\"");
      }
    }
    listener.info.allow_plaintext_auth = section.boolean("allow_plaintext_auth").value_or(false);
    section.report_unknown_keys();
    config.listeners.push_back(std::move(listener));
  }
}

void read_tls(TableReader section, const toml::table* table, ServerConfig& config, std::vector<std::string>& errors) {
  if (auto cert = section.string("cert")) config.tls_cert = *cert;
  if (auto key = section.string("key")) config.tls_key = *key;
  if (config.tls_cert.empty() != config.tls_key.empty()) {
    section.error(config.tls_cert.empty() ? "cert" : "key", "cert and key must be given together");
  }
  section.claim("host");
  section.report_unknown_keys();
  const toml::node* hosts = table != nullptr ? table->get("host") : nullptr;
  if (hosts == nullptr) return;
  const toml::array* array = hosts->as_array();
  if (array == nullptr || !array->is_array_of_tables()) {
    errors.push_back(config_error(section.file(), hosts->source().begin.line, "tls.host",
                                  "must be an array of tables [[tls.host]]"));
    return;
  }
  std::size_t index = 0;
  for (const toml::node& element : *array) {
    TableReader host(element.as_table(), section.file(), fmt::format("tls.host[{}]", index++), errors);
    TlsHost entry;
    entry.name = sdk::lower_ascii(host.string("name").value_or(""));
    if (entry.name.empty()) host.error("name", "is required: the host name clients ask for");
    entry.cert = host.string("cert").value_or("");
    entry.key = host.string("key").value_or("");
    if (entry.cert.empty()) host.error("cert", "is required");
    if (entry.key.empty()) host.error("key", "is required");
    host.report_unknown_keys();
    config.tls_hosts.push_back(std::move(entry));
  }
}

void read_plugins(TableReader section, ServerConfig& config) {
  if (auto dirs = section.strings("dirs")) {
    for (const std::string& dir : *dirs) config.plugin_dirs.emplace_back(dir);
  }
  if (auto disabled = section.strings("disable")) config.plugins_disabled = *disabled;
  section.report_unknown_keys();
}

void read_store(TableReader section, ServerConfig& config) {
  if (auto backend = section.string("backend")) {
    if (backend->empty()) section.error("backend", "must name a store plugin, such as \"sqlite\"");
    config.store_backend = *backend;
  }
  section.report_unknown_keys();
}

void read_log(TableReader section, ServerConfig& config) {
  if (auto format = section.string("format")) {
    if (*format != "text" && *format != "json") section.error("format", "must be \"text\" or \"json\"");
    config.log.format = *format;
  }
  if (auto level = section.string("level")) {
    if (*level != "debug" && *level != "info" && *level != "warn" && *level != "error") {
      section.error("level", "must be \"debug\", \"info\", \"warn\" or \"error\"");
    }
    config.log.level = *level;
  }
  if (auto file = section.string("file")) config.log.file = *file;
  section.report_unknown_keys();
}

void read_dns(TableReader section, ServerConfig& config) {
  for (const std::string& server : section.strings("servers").value_or(std::vector<std::string>{})) {
    const bool address_only =
        !server.empty() && server.find_first_of(" ,") == std::string::npos &&
        (parse_endpoint(server) || parse_endpoint(server + ":53") || parse_endpoint("[" + server + "]:53"));
    if (!address_only) {
      section.error("servers", fmt::format("\"{}\" is not an IP address, or address:port", server));
      continue;
    }
    config.dns_servers.push_back(server);
  }
}

void read_limits(TableReader section, ServerConfig& config) {
  auto positive = [&](std::string_view key, std::int64_t& target) {
    if (auto value = section.integer(key)) {
      if (*value < 1) {
        section.error(key, "must be a positive integer");
      } else {
        target = *value;
      }
    }
  };
  positive("max_connections", config.limits.max_connections);
  positive("max_connections_per_client", config.limits.max_connections_per_client);
  positive("max_auth_failures", config.limits.max_auth_failures);
  std::int64_t window = config.limits.auth_failure_window.count();
  positive("auth_failure_window", window);
  config.limits.auth_failure_window = std::chrono::seconds(window);
  if (auto ttl = section.integer("auth_cache_ttl")) {
    if (*ttl < 0 || *ttl > 86400) {
      section.error("auth_cache_ttl", "must be seconds from 0 (no cache) to 86400");
    } else {
      config.limits.auth_cache_ttl = std::chrono::seconds(*ttl);
    }
  }
  section.report_unknown_keys();
}

}  // namespace

ConfigInvalid::ConfigInvalid(std::vector<std::string> errors)
    : std::runtime_error(join_lines(errors)), errors_(std::move(errors)) {}

std::optional<Endpoint> parse_endpoint(std::string_view text) {
  std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon + 1 >= text.size()) return std::nullopt;
  std::string_view host = text.substr(0, colon);
  std::string_view port_text = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  unsigned port = 0;
  auto [end, error] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (error != std::errc() || end != port_text.data() + port_text.size() || port == 0 || port > 65535) {
    return std::nullopt;
  }
  Endpoint endpoint{std::string(host), static_cast<std::uint16_t>(port)};
  if (!is_ip_literal(endpoint.host)) return std::nullopt;
  return endpoint;
}

ServerConfig load_config(const std::filesystem::path& file) {
  const std::string name = file.string();
  auto document = std::make_shared<toml::table>();
  try {
    *document = toml::parse_file(name);
  } catch (const toml::parse_error& error) {
    throw ConfigInvalid({config_error(name, error.source().begin.line, "(syntax)", error.description())});
  }

  std::vector<std::string> errors;
  ServerConfig config;
  config.file = file;
  TableReader root(document.get(), name, "", errors);
  read_server(TableReader(root.table("server"), name, "server", errors), config);
  const toml::table* tls = root.table("tls");
  read_tls(TableReader(tls, name, "tls", errors), tls, config, errors);
  read_plugins(TableReader(root.table("plugins"), name, "plugins", errors), config);
  read_store(TableReader(root.table("store"), name, "store", errors), config);
  read_log(TableReader(root.table("log"), name, "log", errors), config);
  read_limits(TableReader(root.table("limits"), name, "limits", errors), config);
  read_dns(TableReader(root.table("dns"), name, "dns", errors), config);
  root.claim("listener");
  read_listeners(document->get("listener"), name, errors, config);
  // Plugin sections are checked by the plugins they belong to, when they register.
  root.table("plugin");
  root.report_unknown_keys();

  if (config.tls_cert.empty()) {
    config.tls_cert = config.data_dir / "tls" / "cert.pem";
    config.tls_key = config.data_dir / "tls" / "key.pem";
  }
  if (!errors.empty()) throw ConfigInvalid(std::move(errors));
  config.document = std::move(document);
  return config;
}

}  // namespace tern::config
