// What an administrative command needs to touch the directory: the config, the plugins and the open store.
#pragma once

#include <filesystem>
#include <memory>

#include "config/server_config.hpp"
#include "loader/generation.hpp"
#include "loader/plugin_loader.hpp"

namespace tern::cli {

class StoreSession {
 public:
  // Throws config::ConfigInvalid for a bad config file, std::runtime_error when the store cannot be opened.
  explicit StoreSession(const std::filesystem::path& config_file);
  sdk::MailStore& store() { return *store_; }

 private:
  loader::PluginSet plugins_;  // first: the store's code lives in a plugin and must outlive the store
  std::shared_ptr<const loader::Generation> generation_;
  std::unique_ptr<sdk::MailStore> store_;
};

// Loads config and plugins and builds a generation, as the server would; throws config::ConfigInvalid.
struct LoadedConfig {
  loader::PluginSet plugins;
  std::shared_ptr<const loader::Generation> generation;
};
LoadedConfig load_everything(const std::filesystem::path& config_file);

}  // namespace tern::cli
