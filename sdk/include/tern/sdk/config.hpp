// A plugin's own section of the configuration file: [plugin.<name>].
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "tern/sdk/version.hpp"

namespace tern::sdk {

// Thrown by ConfigSection for a value of the wrong type or a value the plugin refuses. Its message names
// file, line and key: "tern.toml:12: plugin.smtp.max_message_size: must be a positive integer".
class TERN_SDK_VISIBLE ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Read-only access to a plugin's config section, valid only during the plugin's registration call. A plugin
// reads what it needs there and keeps the values in an immutable object of its own. Every key the plugin
// does not read is reported by the core as an unknown key, so a misspelt option is an error, not ignored.
// Getters return nullopt when the key is absent and throw ConfigError when it has another type.
class ConfigSection {
 public:
  virtual std::optional<std::string> get_string(std::string_view key) const = 0;
  virtual std::optional<std::int64_t> get_integer(std::string_view key) const = 0;
  virtual std::optional<bool> get_bool(std::string_view key) const = 0;
  virtual std::optional<std::vector<std::string>> get_strings(std::string_view key) const = 0;
  virtual std::optional<std::vector<std::int64_t>> get_integers(std::string_view key) const = 0;
  // An array of tables ([[plugin.fetch.account]]): one section for each, valid as long as this one, whose
  // keys are checked the same way. Empty when absent.
  virtual std::vector<const ConfigSection*> get_tables(std::string_view key) const = 0;
  // Throws ConfigError naming file, line and key: for a value of the right type that the plugin refuses.
  [[noreturn]] virtual void fail(std::string_view key, std::string_view what) const = 0;

 protected:
  ~ConfigSection() = default;
};

}  // namespace tern::sdk
