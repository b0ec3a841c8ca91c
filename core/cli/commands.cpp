#include "cli/commands.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <termios.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <iostream>

#include "cli/directory_commands.hpp"
#include "cli/queue_commands.hpp"
#include "cli/run_service.hpp"
#include "cli/store_session.hpp"
#include "log/logging.hpp"
#include "server/server.hpp"
#include "tern/sdk/command.hpp"
#include "tern/sdk/text.hpp"

namespace tern::cli {
namespace {

int check_config(const std::filesystem::path& file) {
  LoadedConfig loaded = load_everything(file);
  for (const auto& refused : loaded.plugins.refused) {
    std::cerr << "warning: plugin " << refused.path.string() << ": " << refused.reason << '\n';
  }
  std::cout << file.string() << ": ok\n";
  return 0;
}

// Where the subcommand is in argv when it is not one of the core's: the first word that is neither an option
// nor -c's value. nullopt for a core command, or none.
std::optional<std::size_t> plugin_command_at(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view word = argv[i];
    if (word == "-c" || word == "--config") {
      ++i;
    } else if (!word.starts_with("-")) {
      const bool core = std::find(std::begin(loader::kCoreCommands), std::end(loader::kCoreCommands), word) !=
                        std::end(loader::kCoreCommands);
      if (core) return std::nullopt;
      return static_cast<std::size_t>(i);
    }
  }
  return std::nullopt;
}

// -c FILE, --config FILE or --config=FILE, when given before the subcommand.
std::optional<std::string> config_option(int argc, char** argv) {
  for (int i = 1; i < argc && std::string_view(argv[i]).starts_with("-"); ++i) {
    const std::string_view word = argv[i];
    if ((word == "-c" || word == "--config") && i + 1 < argc) return std::string(argv[i + 1]);
    if (word.starts_with("--config=")) return std::string(word.substr(9));
  }
  return std::nullopt;
}

int list_plugins(const std::filesystem::path& file) {
  LoadedConfig loaded = load_everything(file);
  for (const auto& plugin : loaded.plugins.loaded) {
    std::cout << fmt::format("{:<16} {:<10} sdk {}.{}  {}  {}\n", plugin.name, plugin.version, plugin.sdk_major,
                             plugin.sdk_minor, plugin.provides, plugin.path.string());
  }
  for (const std::string& name : loaded.plugins.disabled) std::cout << fmt::format("{:<16} disabled\n", name);
  for (const auto& [name, command] : loaded.generation->commands) {
    std::cout << fmt::format("command: tern {:<10} {}\n", name, command->summary());
  }
  for (const auto& refused : loaded.plugins.refused) {
    std::cout << fmt::format("refused: {}: {}\n", refused.path.string(), refused.reason);
  }
  return 0;
}

}  // namespace

int run(int argc, char** argv) {
  logging::to_standard_error();
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

  add_directory_commands(app, config_file, action);
  add_queue_commands(app, config_file, action);
  app.footer("Plugins add commands of their own (tern script, tern fetch, ...): `tern plugins` lists them.");

  try {
    // A command that is none of the core's is a plugin's: it parses its own arguments.
    if (const std::optional<std::size_t> at = plugin_command_at(argc, argv)) {
      const std::string command = argv[*at];
      std::vector<std::string> arguments(argv + *at + 1, argv + argc);
      const std::string file = config_option(argc, argv).value_or(config_file);
      if (const std::optional<int> code = run_plugin_command(file, command, std::move(arguments))) return *code;
    }
  } catch (const config::ConfigInvalid& invalid) {
    for (const std::string& line : invalid.errors()) std::cerr << line << '\n';
    return 2;
  } catch (const std::exception& error) {
    std::cerr << "tern: " << error.what() << '\n';
    return 1;
  }
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
