#include "cli/commands.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <termios.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <iostream>

#include "auth/password.hpp"
#include "cli/queue_commands.hpp"
#include "cli/run_service.hpp"
#include "cli/script_commands.hpp"
#include "cli/store_session.hpp"
#include "server/server.hpp"
#include "tern/sdk/text.hpp"

namespace tern::cli {
namespace {

bool valid_domain(std::string_view domain) {
  if (domain.empty() || domain.size() > 253 || domain.front() == '.' || domain.back() == '.') return false;
  std::size_t label = 0;
  for (char c : domain) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
    } else if (std::isalnum(static_cast<unsigned char>(c)) || c == '-') {
      if (++label > 63) return false;
    } else {
      return false;
    }
  }
  return true;
}

bool valid_address(std::string_view address) {
  std::size_t at = address.rfind('@');
  if (at == std::string_view::npos || at == 0) return false;
  std::string_view local = address.substr(0, at);
  if (local.size() > 64) return false;
  for (unsigned char c : local) {
    if (c <= ' ' || c == '@' || c == '<' || c == '>' || c == '"' || c == '(' || c == ')' || c == ',' || c == ';' ||
        c == ':' || c == '\\' || c == '[' || c == ']' || c == 127) {
      return false;
    }
  }
  return valid_domain(address.substr(at + 1));
}

// From standard input when it is not a terminal (one line), else asked twice at a prompt without echo.
std::string read_new_password() {
  if (!::isatty(STDIN_FILENO)) {
    std::string line;
    std::getline(std::cin, line);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return line;
  }
  auto prompt = [](const char* text) {
    // Echo goes off before the prompt appears, so nothing typed after seeing it is ever shown.
    termios old{};
    ::tcgetattr(STDIN_FILENO, &old);
    termios silent = old;
    silent.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(STDIN_FILENO, TCSANOW, &silent);
    std::cerr << text << std::flush;
    std::string line;
    std::getline(std::cin, line);
    ::tcsetattr(STDIN_FILENO, TCSANOW, &old);
    std::cerr << '\n';
    return line;
  };
  std::string first = prompt("Password: ");
  if (prompt("Again: ") != first) throw sdk::DirectoryError("the two passwords differ");
  return first;
}

std::string checked_address(const std::string& address) {
  if (!valid_address(address))
    throw CLI::ValidationError(fmt::format("\"{}\" is not an address such as user@example.org", address));
  return sdk::lower_ascii(address);
}

std::string checked_domain(const std::string& domain) {
  if (!valid_domain(domain)) throw CLI::ValidationError(fmt::format("\"{}\" is not a domain name", domain));
  return sdk::lower_ascii(domain);
}

// An address, or "@domain" for the domain's catch-all.
std::string checked_alias_source(const std::string& source) {
  if (!source.empty() && source.front() == '@') return "@" + checked_domain(source.substr(1));
  return checked_address(source);
}

// A quota limit: a number, with a K, M or G suffix when `sizes`, or "none" (0: no limit). `what` names the
// kind of value in the error.
std::uint64_t parse_limit(const std::string& text, bool sizes, std::string_view what) {
  if (sdk::lower_ascii(text) == "none") return 0;
  std::size_t used = 0;
  unsigned long long number = 0;
  try {
    number = std::stoull(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  const std::string unit = sdk::lower_ascii(text.substr(used));
  const std::uint64_t scale = unit.empty()  ? 1
                              : !sizes      ? 0
                              : unit == "k" ? 1024
                              : unit == "m" ? 1024 * 1024
                              : unit == "g" ? 1024ull * 1024 * 1024
                                            : 0;
  if (used == 0 || text[0] == '-' || scale == 0) {
    throw CLI::ValidationError(fmt::format("\"{}\" is not {}", text, what));
  }
  return number * scale;
}

int check_config(const std::filesystem::path& file) {
  LoadedConfig loaded = load_everything(file);
  for (const auto& refused : loaded.plugins.refused) {
    std::cerr << "warning: plugin " << refused.path.string() << ": " << refused.reason << '\n';
  }
  std::cout << file.string() << ": ok\n";
  return 0;
}

int list_plugins(const std::filesystem::path& file) {
  LoadedConfig loaded = load_everything(file);
  for (const auto& plugin : loaded.plugins.loaded) {
    std::cout << fmt::format("{:<16} {:<10} sdk {}.{}  {}  {}\n", plugin.name, plugin.version, plugin.sdk_major,
                             plugin.sdk_minor, plugin.provides, plugin.path.string());
  }
  for (const std::string& name : loaded.plugins.disabled) std::cout << fmt::format("{:<16} disabled\n", name);
  for (const auto& refused : loaded.plugins.refused) {
    std::cout << fmt::format("refused: {}: {}\n", refused.path.string(), refused.reason);
  }
  return 0;
}

}  // namespace

int run(int argc, char** argv) {
  CLI::App app{"Tern: a mail server its users extend"};
  app.require_subcommand(1);
  std::string config_file = "/etc/tern/tern.toml";
  if (const char* from_env = std::getenv("TERN_CONFIG")) config_file = from_env;
  app.add_option("-c,--config", config_file, "configuration file (default /etc/tern/tern.toml or $TERN_CONFIG)");
  app.fallthrough();

  std::function<int()> action;
  auto on = [&](CLI::App* command, std::function<int()> body) {
    command->callback([&action, body] { action = body; });
  };

  on(app.add_subcommand("serve", "run the server in the foreground"), [&] { return server::serve(config_file); });

  auto* config = app.add_subcommand("config", "configuration file")->require_subcommand(1);
  on(config->add_subcommand("check", "validate the configuration and the plugins' sections"),
     [&] { return check_config(config_file); });
  on(app.add_subcommand("plugins", "list plugins: loaded, disabled and refused"),
     [&] { return list_plugins(config_file); });

  std::string name;
  std::string target;
  auto with = [](CLI::App* command, const char* argument, std::string& value, bool required = true) {
    auto* option = command->add_option(argument, value);
    if (required) option->required();
    return command;
  };
  auto* domain = app.add_subcommand("domain", "local domains")->require_subcommand(1);
  on(with(domain->add_subcommand("add", "add a local domain"), "domain", name), [&] {
    StoreSession(config_file).store().add_domain(checked_domain(name));
    return 0;
  });
  on(domain->add_subcommand("list", "list local domains"), [&] {
    for (const std::string& entry : StoreSession(config_file).store().list_domains()) std::cout << entry << '\n';
    return 0;
  });
  on(with(domain->add_subcommand("remove", "remove a domain without users or aliases"), "domain", name), [&] {
    StoreSession(config_file).store().remove_domain(checked_domain(name));
    return 0;
  });

  auto* user = app.add_subcommand("user", "users (mailboxes)")->require_subcommand(1);
  auto set_password = [&](bool new_user) {
    std::string address = checked_address(name);
    StoreSession session(config_file);
    std::string password = read_new_password();
    if (password.empty()) throw sdk::DirectoryError("the password must not be empty");
    std::string hash = auth::hash_password(password);
    if (new_user) {
      session.store().add_user(address, hash);
    } else {
      session.store().set_password_hash(address, hash);
    }
    return 0;
  };
  on(with(user->add_subcommand("add", "add a user; the password is read from stdin or asked"), "address", name),
     [&] { return set_password(true); });
  on(with(user->add_subcommand("passwd", "set a user's password, read from stdin or asked"), "address", name),
     [&] { return set_password(false); });
  on(with(user->add_subcommand("list", "list users, of one domain or all"), "domain", name, false), [&] {
    std::string domain_name = name.empty() ? "" : checked_domain(name);
    for (const std::string& entry : StoreSession(config_file).store().list_users(domain_name))
      std::cout << entry << '\n';
    return 0;
  });
  on(with(user->add_subcommand("remove", "remove a user and their mail"), "address", name), [&] {
    StoreSession(config_file).store().remove_user(checked_address(name));
    return 0;
  });
  std::string storage_limit;
  std::string messages_limit;
  auto* quota =
      with(user->add_subcommand("quota", "show a user's quota and usage, or set its limits"), "address", name);
  quota->add_option("--storage", storage_limit, "storage limit: 500M, 2G, ... or none");
  quota->add_option("--messages", messages_limit, "how many messages the user may keep, or none");
  on(quota, [&] {
    const std::string address = checked_address(name);
    StoreSession session(config_file);
    sdk::QuotaInfo info = session.store().quota(address);
    if (!storage_limit.empty() || !messages_limit.empty()) {
      const std::uint64_t storage = storage_limit.empty()
                                        ? info.storage_limit
                                        : parse_limit(storage_limit, true, "a size such as 500M, 2G or none");
      const std::uint64_t messages = messages_limit.empty()
                                         ? info.messages_limit
                                         : parse_limit(messages_limit, false, "a number of messages or none");
      session.store().set_quota(address, storage, messages);
      info = session.store().quota(address);
    }
    const auto limit = [](std::uint64_t value) { return value == 0 ? std::string("none") : std::to_string(value); };
    std::cout << fmt::format("storage   {} octets, limit {}\nmessages  {}, limit {}\n", info.storage_used,
                             limit(info.storage_limit), info.messages_used, limit(info.messages_limit));
    return 0;
  });

  auto* fetch = app.add_subcommand("fetch", "collecting remote mailboxes (the fetch plugin)")->require_subcommand(1);
  on(with(fetch->add_subcommand("run", "poll one account, or all, now"), "account", name, false),
     [&] { return run_service_once(config_file, "fetch", name); });

  auto* alias =
      app.add_subcommand("alias", "aliases: a local address (or @domain, a catch-all) delivered to other addresses")
          ->require_subcommand(1);
  auto* alias_add = alias->add_subcommand("add", "add an alias");
  alias_add->add_option("source", name)->required();
  alias_add->add_option("target", target)->required();
  on(alias_add, [&] {
    StoreSession(config_file).store().add_alias(checked_alias_source(name), checked_address(target));
    return 0;
  });
  auto* alias_remove = alias->add_subcommand("remove", "remove an alias");
  alias_remove->add_option("source", name)->required();
  alias_remove->add_option("target", target)->required();
  on(alias_remove, [&] {
    StoreSession(config_file).store().remove_alias(checked_alias_source(name), checked_address(target));
    return 0;
  });
  on(with(alias->add_subcommand("list", "list aliases, of one domain or all"), "domain", name, false), [&] {
    std::string domain_name = name.empty() ? "" : checked_domain(name);
    for (const auto& entry : StoreSession(config_file).store().list_aliases(domain_name)) {
      std::cout << entry.source << " -> " << entry.target << '\n';
    }
    return 0;
  });

  add_queue_commands(app, config_file, action);
  add_script_commands(app, config_file, action);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    int code = app.exit(error);
    return code == 0 ? 0 : 2;
  }
  try {
    return action ? action() : 2;
  } catch (const config::ConfigInvalid& invalid) {
    for (const std::string& line : invalid.errors()) std::cerr << line << '\n';
    return 2;
  } catch (const CLI::ValidationError& error) {
    std::cerr << "tern: " << error.what() << '\n';
    return 2;
  } catch (const sdk::DirectoryError& error) {
    std::cerr << "tern: " << error.what() << '\n';
    return 1;
  } catch (const std::exception& error) {
    std::cerr << "tern: " << error.what() << '\n';
    return 1;
  }
}

}  // namespace tern::cli
