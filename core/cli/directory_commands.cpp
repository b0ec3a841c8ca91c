// `tern domain`, `tern user` and `tern alias`: the directory, and users' passwords and quotas, edited in the store
// the configuration names (the server may be running).
#include "cli/directory_commands.hpp"

#include <fmt/format.h>
#include <termios.h>
#include <unistd.h>

#include <iostream>
#include <memory>

#include "auth/password.hpp"
#include "cli/store_session.hpp"
#include "tern/sdk/address.hpp"

namespace tern::cli {
namespace {

using On = std::function<void(CLI::App*, std::function<int()>)>;

// The words the subcommands take; only one subcommand runs, and this lives until its body has run.
struct Words {
  std::string name;
  std::string target;
  std::string storage;
  std::string messages;
};

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
  return sdk::is_domain_name(address.substr(at + 1));
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
  if (!sdk::is_domain_name(domain)) throw CLI::ValidationError(fmt::format("\"{}\" is not a domain name", domain));
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

// Adds a positional argument to a subcommand, and returns the subcommand.
CLI::App* with(CLI::App* command, const char* argument, std::string& value, bool required = true) {
  auto* option = command->add_option(argument, value);
  if (required) option->required();
  return command;
}

void add_domain_commands(CLI::App& app, const std::string& config_file, const On& on, std::shared_ptr<Words> words) {
  auto* domain = app.add_subcommand("domain", "local domains")->require_subcommand(1);
  on(with(domain->add_subcommand("add", "add a local domain"), "domain", words->name), [&config_file, words] {
    StoreSession(config_file).store().directory().add_domain(checked_domain(words->name));
    return 0;
  });
  on(domain->add_subcommand("list", "list local domains"), [&config_file, words] {
    for (const std::string& entry : StoreSession(config_file).store().directory().list_domains())
      std::cout << entry << '\n';
    return 0;
  });
  on(with(domain->add_subcommand("remove", "remove a domain without users or aliases"), "domain", words->name),
     [&config_file, words] {
       StoreSession(config_file).store().directory().remove_domain(checked_domain(words->name));
       return 0;
     });
}

void add_user_commands(CLI::App& app, const std::string& config_file, const On& on, std::shared_ptr<Words> words) {
  auto* user = app.add_subcommand("user", "users (mailboxes)")->require_subcommand(1);
  auto set_password = [&config_file, words](bool new_user) {
    std::string address = checked_address(words->name);
    StoreSession session(config_file);
    std::string password = read_new_password();
    if (password.empty()) throw sdk::DirectoryError("the password must not be empty");
    std::string hash = auth::hash_password(password);
    if (new_user) {
      session.store().directory().add_user(address, hash);
    } else {
      session.store().directory().set_password_hash(address, hash);
    }
    return 0;
  };
  on(with(user->add_subcommand("add", "add a user; the password is read from stdin or asked"), "address", words->name),
     [set_password] { return set_password(true); });
  on(with(user->add_subcommand("passwd", "set a user's password, read from stdin or asked"), "address", words->name),
     [set_password] { return set_password(false); });
  on(with(user->add_subcommand("list", "list users, of one domain or all"), "domain", words->name, false),
     [&config_file, words] {
       std::string domain_name = words->name.empty() ? "" : checked_domain(words->name);
       for (const std::string& entry : StoreSession(config_file).store().directory().list_users(domain_name))
         std::cout << entry << '\n';
       return 0;
     });
  on(with(user->add_subcommand("remove", "remove a user and their mail"), "address", words->name),
     [&config_file, words] {
       StoreSession(config_file).store().directory().remove_user(checked_address(words->name));
       return 0;
     });
  auto* quota =
      with(user->add_subcommand("quota", "show a user's quota and usage, or set its limits"), "address", words->name);
  quota->add_option("--storage", words->storage, "storage limit: 500M, 2G, ... or none");
  quota->add_option("--messages", words->messages, "how many messages the user may keep, or none");
  on(quota, [&config_file, words] {
    const std::string address = checked_address(words->name);
    StoreSession session(config_file);
    sdk::QuotaInfo info = session.store().mailboxes().quota(address);
    if (!words->storage.empty() || !words->messages.empty()) {
      const std::uint64_t storage = words->storage.empty()
                                        ? info.storage_limit
                                        : parse_limit(words->storage, true, "a size such as 500M, 2G or none");
      const std::uint64_t messages = words->messages.empty()
                                         ? info.messages_limit
                                         : parse_limit(words->messages, false, "a number of messages or none");
      session.store().mailboxes().set_quota(address, storage, messages);
      info = session.store().mailboxes().quota(address);
    }
    const auto limit = [](std::uint64_t value) { return value == 0 ? std::string("none") : std::to_string(value); };
    std::cout << fmt::format("storage   {} octets, limit {}\nmessages  {}, limit {}\n", info.storage_used,
                             limit(info.storage_limit), info.messages_used, limit(info.messages_limit));
    return 0;
  });
}

void add_alias_commands(CLI::App& app, const std::string& config_file, const On& on, std::shared_ptr<Words> words) {
  auto* alias =
      app.add_subcommand("alias", "aliases: a local address (or @domain, a catch-all) delivered to other addresses")
          ->require_subcommand(1);
  auto* alias_add = alias->add_subcommand("add", "add an alias");
  alias_add->add_option("source", words->name)->required();
  alias_add->add_option("target", words->target)->required();
  on(alias_add, [&config_file, words] {
    StoreSession(config_file)
        .store()
        .directory()
        .add_alias(checked_alias_source(words->name), checked_address(words->target));
    return 0;
  });
  auto* alias_remove = alias->add_subcommand("remove", "remove an alias");
  alias_remove->add_option("source", words->name)->required();
  alias_remove->add_option("target", words->target)->required();
  on(alias_remove, [&config_file, words] {
    StoreSession(config_file)
        .store()
        .directory()
        .remove_alias(checked_alias_source(words->name), checked_address(words->target));
    return 0;
  });
  on(with(alias->add_subcommand("list", "list aliases, of one domain or all"), "domain", words->name, false),
     [&config_file, words] {
       std::string domain_name = words->name.empty() ? "" : checked_domain(words->name);
       for (const auto& entry : StoreSession(config_file).store().directory().list_aliases(domain_name)) {
         std::cout << entry.source << " -> " << entry.target << '\n';
       }
       return 0;
     });
}

}  // namespace

void add_directory_commands(CLI::App& app, const std::string& config_file, std::function<int()>& action) {
  const On on = [&action](CLI::App* command, std::function<int()> body) {
    command->callback([&action, body] { action = body; });
  };
  auto words = std::make_shared<Words>();
  add_domain_commands(app, config_file, on, words);
  add_user_commands(app, config_file, on, words);
  add_alias_commands(app, config_file, on, words);
}

}  // namespace tern::cli
