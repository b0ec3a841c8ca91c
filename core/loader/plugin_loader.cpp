#include "loader/plugin_loader.hpp"

#include <dlfcn.h>
#include <fmt/format.h>

#include <algorithm>
#include <boost/dll/shared_library.hpp>

namespace tern::loader {
namespace {

std::string describe_sdk(unsigned major, unsigned minor) {
  return fmt::format("{}.{}", major, minor);
}

}  // namespace

const LoadedPlugin* PluginSet::find(std::string_view name) const {
  for (const LoadedPlugin& plugin : loaded) {
    if (plugin.name == name) return &plugin;
  }
  return nullptr;
}

std::string manifest_mismatch(const tern_plugin_manifest& manifest) {
  const std::string core_sdk = describe_sdk(TERN_SDK_VERSION_MAJOR, TERN_SDK_VERSION_MINOR);
  if (manifest.magic != TERN_PLUGIN_MAGIC) return "its manifest is not a Tern plugin manifest";
  if (manifest.sdk_major != TERN_SDK_VERSION_MAJOR || manifest.sdk_minor > TERN_SDK_VERSION_MINOR) {
    return fmt::format("built for SDK {}, but this server provides SDK {}",
                       describe_sdk(manifest.sdk_major, manifest.sdk_minor), core_sdk);
  }
  std::string_view signature = manifest.build_signature != nullptr ? manifest.build_signature : "";
  if (signature != TERN_SDK_BUILD_SIGNATURE) {
    return fmt::format("built with \"{}\", but this server was built with \"{}\"", signature, TERN_SDK_BUILD_SIGNATURE);
  }
  if (manifest.name == nullptr || *manifest.name == '\0') return "its manifest has no name";
  return {};
}

PluginSet load_plugins(const std::vector<std::filesystem::path>& dirs, const std::vector<std::string>& disabled) {
  PluginSet set;
  for (const std::filesystem::path& dir : dirs) {
    std::error_code error;
    if (!std::filesystem::is_directory(dir, error)) {
      set.refused.push_back({dir, "plugin folder does not exist"});
      continue;
    }
    std::vector<std::filesystem::path> files;
    for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
      if (entry.path().extension() == ".so" && entry.is_regular_file()) files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    for (const std::filesystem::path& file : files) {
      auto library = std::make_shared<boost::dll::shared_library>();
      boost::dll::fs::error_code load_error;
      library->load(file.string(), boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local, load_error);
      if (load_error) {
        set.refused.push_back({file, fmt::format("cannot be loaded: {}", load_error.message())});
        continue;
      }
      if (!library->has("tern_plugin_manifest_v1") || !library->has("tern_plugin_register_v1")) {
        set.refused.push_back(
            {file, "not a Tern plugin: it has no tern_plugin_manifest_v1 or tern_plugin_register_v1"});
        continue;
      }
      const auto& manifest = library->get<const tern_plugin_manifest>("tern_plugin_manifest_v1");
      if (std::string reason = manifest_mismatch(manifest); !reason.empty()) {
        std::string name = manifest.magic == TERN_PLUGIN_MAGIC && manifest.name != nullptr ? manifest.name : "?";
        set.refused.push_back({file, fmt::format("plugin \"{}\" is refused: {}", name, reason)});
        continue;
      }
      std::string name = manifest.name;
      if (std::find(disabled.begin(), disabled.end(), name) != disabled.end()) {
        set.disabled.push_back(name);
        continue;
      }
      if (const LoadedPlugin* twin = set.find(name)) {
        set.refused.push_back(
            {file, fmt::format("plugin \"{}\" is loaded already from {}", name, twin->path.string())});
        continue;
      }
      // A plugin's code must outlive everything of it, including an exception object in flight or a hook
      // kept by a generation: an accepted plugin is never unloaded before the process ends.
      ::dlopen(file.c_str(), RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
      LoadedPlugin plugin;
      plugin.name = name;
      plugin.version = manifest.version != nullptr ? manifest.version : "";
      plugin.provides = manifest.provides != nullptr ? manifest.provides : "";
      plugin.sdk_major = manifest.sdk_major;
      plugin.sdk_minor = manifest.sdk_minor;
      plugin.path = file;
      plugin.entry = &library->get<EntryPoint>("tern_plugin_register_v1");
      plugin.log = std::make_unique<logging::NamedLog>(name);
      plugin.library = std::move(library);
      set.loaded.push_back(std::move(plugin));
    }
  }
  return set;
}

}  // namespace tern::loader
