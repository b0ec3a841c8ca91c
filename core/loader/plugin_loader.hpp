// Finds plugin libraries in the configured folders, reads their manifests and refuses the ones that do not
// fit this build, with a reason naming both sides.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "log/logging.hpp"
#include "tern/sdk/plugin.hpp"

namespace boost::dll {
class shared_library;
}

namespace tern::loader {

using EntryPoint = int(sdk::Registrar*) noexcept;

struct LoadedPlugin {
  std::string name;
  std::string version;
  std::string provides;
  unsigned sdk_major = 0;
  unsigned sdk_minor = 0;
  std::filesystem::path path;
  EntryPoint* entry = nullptr;
  std::unique_ptr<logging::NamedLog> log;
  // The library is also pinned (RTLD_NODELETE): hooks, objects and exceptions of a plugin may outlive this.
  std::shared_ptr<boost::dll::shared_library> library;
};

struct RefusedPlugin {
  std::filesystem::path path;
  std::string reason;
};

struct PluginSet {
  std::vector<LoadedPlugin> loaded;
  std::vector<RefusedPlugin> refused;
  std::vector<std::string> disabled;  // found but disabled by [plugins] disable

  const LoadedPlugin* find(std::string_view name) const;
};

// Loads every "*.so" in `dirs`, in name order per folder. Never throws for a bad plugin: it goes to
// `refused` with the reason. A folder that does not exist is refused as well.
PluginSet load_plugins(const std::vector<std::filesystem::path>& dirs, const std::vector<std::string>& disabled);

// Why a manifest does not fit this build; empty when it does.
std::string manifest_mismatch(const tern_plugin_manifest& manifest);

}  // namespace tern::loader
