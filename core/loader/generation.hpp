// One generation of what the plugins registered from one reading of the config: hooks, protocols, stores,
// services and commands.
// A reload builds a new generation; sessions keep the one they started with.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/server_config.hpp"
#include "loader/plugin_loader.hpp"
#include "pipeline/hook_chain.hpp"
#include "tern/sdk/protocol.hpp"

namespace tern::sdk {
class Command;
class Service;
}  // namespace tern::sdk

namespace tern::loader {

struct Generation {
  std::shared_ptr<const config::ServerConfig> config;
  pipeline::HookChain hooks;
  std::map<std::string, std::shared_ptr<const sdk::Protocol>, std::less<>> protocols;
  std::map<std::string, std::shared_ptr<const sdk::StoreFactory>, std::less<>> stores;
  std::vector<std::shared_ptr<const sdk::Service>> services;
  std::map<std::string, std::shared_ptr<const sdk::Command>, std::less<>> commands;
};

// The command line's own subcommands, which no plugin's command may take.
inline constexpr const char* kCoreCommands[] = {"serve", "config", "plugins", "domain", "user", "alias", "queue"};

// Calls every loaded plugin's entry point with its [plugin.<name>] section, then checks that the config asks
// only for what the plugins provide (listener protocols, store backend, plugin sections). Throws
// config::ConfigInvalid with every error found.
std::shared_ptr<const Generation> build_generation(const PluginSet& plugins,
                                                   std::shared_ptr<const config::ServerConfig> config);

}  // namespace tern::loader
