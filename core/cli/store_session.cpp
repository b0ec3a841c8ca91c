#include "cli/store_session.hpp"

#include "privileges/run_as.hpp"

namespace tern::cli {

LoadedConfig load_everything(const std::filesystem::path& config_file) {
  auto config = std::make_shared<const config::ServerConfig>(config::load_config(config_file));
  LoadedConfig loaded;
  loaded.plugins = loader::load_plugins(config->plugin_dirs, config->plugins_disabled);
  loaded.generation = loader::build_generation(loaded.plugins, config);
  return loaded;
}

StoreSession::StoreSession(const std::filesystem::path& config_file) {
  LoadedConfig loaded = load_everything(config_file);
  plugins_ = std::move(loaded.plugins);
  generation_ = std::move(loaded.generation);
  const config::ServerConfig& config = *generation_->config;
  std::filesystem::create_directories(config.data_dir);
  // As the server's user: a file the store makes now must be the server's to write later.
  privileges::settle(config, false);
  store_ = generation_->stores.at(config.store_backend)->open(config.data_dir);
}

}  // namespace tern::cli
