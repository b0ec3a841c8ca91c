#include "loader/generation.hpp"

#include <fmt/format.h>

#include <algorithm>

#include <toml++/toml.h>

#include "config/table_reader.hpp"
#include "tern/sdk/command.hpp"
#include "tern/sdk/service.hpp"

namespace tern::loader {
namespace {

// A plugin's config section: every getter goes through a TableReader, which records what is wrong (file, line
// and key) and lets the plugin read on, so that one start reports every mistake of the section.
class PluginSection final : public sdk::ConfigSection {
 public:
  PluginSection(const toml::table* table, const std::string& file, const std::string& path)
      : reader_(table, file, path, errors_) {}

  std::optional<std::string> get_string(std::string_view key) const override { return reader_.string(key); }
  std::optional<std::int64_t> get_integer(std::string_view key) const override { return reader_.integer(key); }
  std::optional<bool> get_bool(std::string_view key) const override { return reader_.boolean(key); }
  std::optional<std::vector<std::string>> get_strings(std::string_view key) const override {
    return reader_.strings(key);
  }
  std::optional<std::vector<std::int64_t>> get_integers(std::string_view key) const override {
    return reader_.integers(key);
  }
  std::vector<const sdk::ConfigSection*> get_tables(std::string_view key) const override {
    const std::vector<const toml::table*> tables = reader_.tables(key);
    std::vector<const sdk::ConfigSection*> sections;
    for (std::size_t i = 0; i < tables.size(); ++i) {
      children_.push_back(
          std::make_unique<PluginSection>(tables[i], reader_.file(), fmt::format("{}.{}[{}]", reader_.path(), key, i)));
      sections.push_back(children_.back().get());
    }
    return sections;
  }
  bool holds_string(std::string_view key) const override { return reader_.holds_string(key); }
  void error(std::string_view key, std::string_view what) const override { reader_.error(key, what); }
  [[noreturn]] void fail(std::string_view key, std::string_view what) const override {
    reader_.error(key, what);
    throw sdk::ConfigError(errors_.back());
  }

  // What the plugin's reads found wrong, here and in the tables of arrays it asked for.
  std::vector<std::string> errors() const {
    std::vector<std::string> found = errors_;
    for (const auto& child : children_) {
      for (std::string& error : child->errors()) found.push_back(std::move(error));
    }
    return found;
  }

  // The keys nobody read, here and in the tables of arrays the plugin asked for.
  std::vector<std::string> unknown_keys() {
    std::vector<std::string> found;
    std::swap(found, errors_);
    reader_.report_unknown_keys();
    std::swap(found, errors_);
    for (const auto& child : children_) {
      for (std::string& error : child->unknown_keys()) found.push_back(std::move(error));
    }
    return found;
  }

 private:
  mutable std::vector<std::string> errors_;
  mutable config::TableReader reader_;
  mutable std::vector<std::unique_ptr<PluginSection>> children_;
};

class GenerationRegistrar final : public sdk::Registrar {
 public:
  GenerationRegistrar(const LoadedPlugin& plugin, PluginSection& section, Generation& staged)
      : plugin_(plugin), section_(section), staged_(staged) {}

  const sdk::ConfigSection& config() const override { return section_; }
  sdk::Log& log() override { return *plugin_.log; }
  const std::filesystem::path& data_dir() const override { return staged_.config->data_dir; }
  void add_hook(sdk::HookSpec hook) override {
    if (!hook.function == !hook.async_hook) {
      failure_ = fmt::format("hook \"{}\" needs a function or an async hook, one of the two", hook.name);
      return;
    }
    hooks_.push_back(std::move(hook));
  }
  void add_protocol(std::shared_ptr<const sdk::Protocol> protocol) override {
    if (protocol) protocols_.push_back(std::move(protocol));
  }
  void add_store(std::string name, std::shared_ptr<const sdk::StoreFactory> factory) override {
    if (factory) stores_.emplace_back(std::move(name), std::move(factory));
  }
  void add_service(std::shared_ptr<const sdk::Service> service) override {
    if (service) services_.push_back(std::move(service));
  }
  void add_command(std::shared_ptr<const sdk::Command> command) override {
    if (command) commands_.push_back(std::move(command));
  }
  void fail(std::string_view message) override { failure_ = message; }

  // Moves what was registered into the generation, unless the plugin failed or its section has errors. Returns
  // the errors: the section's, then a failure of the plugin's own.
  std::vector<std::string> commit(const std::string& file) {
    std::vector<std::string> errors = section_.errors();
    // A ConfigError is one of the section's errors already; any other failure is the plugin's own.
    if (!failure_.empty() && std::find(errors.begin(), errors.end(), failure_) == errors.end()) {
      errors.push_back(config::config_error(file, 0, "plugin." + plugin_.name, "refused: " + failure_));
    }
    // A plugin that read its whole section has its unread keys reported too; one that stopped early did not
    // get to every key it knows.
    if (failure_.empty()) {
      for (std::string& unknown : section_.unknown_keys()) errors.push_back(std::move(unknown));
    }
    if (!errors.empty()) return errors;
    for (sdk::HookSpec& hook : hooks_) staged_.hooks.add(std::move(hook));
    for (auto& protocol : protocols_) {
      std::string name = protocol->name();
      if (!staged_.protocols.emplace(name, std::move(protocol)).second) {
        errors.push_back(config::config_error(file, 0, "plugin." + plugin_.name,
                                              fmt::format("provides protocol \"{}\" a second time", name)));
      }
    }
    for (auto& [name, factory] : stores_) {
      if (!staged_.stores.emplace(name, std::move(factory)).second) {
        errors.push_back(config::config_error(file, 0, "plugin." + plugin_.name,
                                              fmt::format("provides store \"{}\" a second time", name)));
      }
    }
    for (auto& service : services_) staged_.services.push_back(std::move(service));
    for (auto& command : commands_) {
      const std::string name = command->name();
      const bool valid = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
      });
      const bool core = std::find(std::begin(kCoreCommands), std::end(kCoreCommands), name) != std::end(kCoreCommands);
      if (!valid || core || !staged_.commands.emplace(name, std::move(command)).second) {
        errors.push_back(config::config_error(file, 0, "plugin." + plugin_.name,
                                              fmt::format("provides command \"{}\", which {}", name,
                                                          !valid ? "is not a command name"
                                                          : core ? "is one of the core's own"
                                                                 : "another plugin provides")));
      }
    }
    return errors;
  }

 private:
  const LoadedPlugin& plugin_;
  PluginSection& section_;
  Generation& staged_;
  std::string failure_;
  std::vector<sdk::HookSpec> hooks_;
  std::vector<std::shared_ptr<const sdk::Protocol>> protocols_;
  std::vector<std::pair<std::string, std::shared_ptr<const sdk::StoreFactory>>> stores_;
  std::vector<std::shared_ptr<const sdk::Service>> services_;
  std::vector<std::shared_ptr<const sdk::Command>> commands_;
};

std::int64_t line_of(const toml::node* node) {
  return node != nullptr ? node->source().begin.line : 0;
}

}  // namespace

std::shared_ptr<const Generation> build_generation(const PluginSet& plugins,
                                                   std::shared_ptr<const config::ServerConfig> config) {
  auto generation = std::make_shared<Generation>();
  generation->config = config;
  std::vector<std::string> errors;
  const std::string file = config->file.string();
  const toml::table* sections = nullptr;
  if (config->document) {
    if (const toml::node* node = config->document->get("plugin")) sections = node->as_table();
  }

  for (const LoadedPlugin& plugin : plugins.loaded) {
    const toml::table* own = nullptr;
    if (sections != nullptr) {
      if (const toml::node* node = sections->get(plugin.name)) {
        own = node->as_table();
        if (own == nullptr) {
          errors.push_back(config::config_error(file, line_of(node), "plugin." + plugin.name, "must be a table"));
          continue;
        }
      }
    }
    PluginSection section(own, file, "plugin." + plugin.name);
    GenerationRegistrar registrar(plugin, section, *generation);
    plugin.entry(&registrar);
    const std::vector<std::string> plugin_errors = registrar.commit(file);
    errors.insert(errors.end(), plugin_errors.begin(), plugin_errors.end());
  }

  if (sections != nullptr) {
    for (const auto& [name, node] : *sections) {
      bool disabled = std::find(plugins.disabled.begin(), plugins.disabled.end(), name.str()) != plugins.disabled.end();
      if (plugins.find(name.str()) == nullptr && !disabled) {
        errors.push_back(config::config_error(file, line_of(&node), fmt::format("plugin.{}", name.str()),
                                              "no plugin of that name is loaded"));
      }
    }
  }
  for (const config::Listener& listener : config->listeners) {
    if (!generation->protocols.contains(listener.info.protocol)) {
      errors.push_back(
          config::config_error(file, listener.line, "listener.protocol",
                               fmt::format("\"{}\" is not provided by any loaded plugin", listener.info.protocol)));
    }
  }
  if (!generation->stores.contains(config->store_backend)) {
    const toml::node* node = config->document ? config->document->at_path("store.backend").node() : nullptr;
    errors.push_back(
        config::config_error(file, line_of(node), "store.backend",
                             fmt::format("\"{}\" is not provided by any loaded plugin", config->store_backend)));
  }
  if (!errors.empty()) throw config::ConfigInvalid(std::move(errors));
  return generation;
}

}  // namespace tern::loader
