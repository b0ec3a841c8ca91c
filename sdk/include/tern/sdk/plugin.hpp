// A plugin's manifest and entry point, and the registrar it registers what it provides with.
//
//   #include "tern/sdk/plugin.hpp"
//   TERN_PLUGIN("add-header", "1.0.0", "hook:message") {
//     registrar.add_hook({"add-header.tag", tern::sdk::Stage::message, 0, [](auto& ctx) { ... }});
//   }
//
// The core calls the entry point on the main thread at start-up and again at every reload, each time with a
// registrar for a new generation: a plugin registers everything again from its config of that moment.
// Sessions already running keep the generation they started with.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "tern/sdk/config.hpp"
#include "tern/sdk/hook.hpp"
#include "tern/sdk/log.hpp"
#include "tern/sdk/version.hpp"

extern "C" {
// The plugin's manifest, read by the loader before any C++ code of the plugin runs. Plain C, so that a
// plugin of another SDK version or compiler can be read safely and refused with a message naming both sides.
struct tern_plugin_manifest {
  unsigned magic;  // TERN_PLUGIN_MAGIC
  unsigned sdk_major;
  unsigned sdk_minor;
  const char* name;             // unique among loaded plugins; its config section is [plugin.<name>]
  const char* version;          // the plugin's own version
  const char* build_signature;  // TERN_SDK_BUILD_SIGNATURE as the plugin was built
  const char* provides;         // informative: "protocol:smtp,hook:message"
};
}

#define TERN_PLUGIN_MAGIC 0x5445524eu

namespace tern::sdk {

class Command;
class Protocol;
class Service;
class StoreFactory;

// Given to the entry point; valid only during that call. Not thread-safe (the call is on the main thread).
class Registrar {
 public:
  // This plugin's [plugin.<name>] section (empty when absent).
  virtual const ConfigSection& config() const = 0;
  // The plugin's log; valid for as long as the plugin is loaded.
  virtual Log& log() = 0;
  // The server's data folder ([server] data_dir), where a plugin keeps files of its own under a folder named
  // after it (the dkim plugin's keys: data_dir/dkim/). It may not exist yet when the command line runs.
  virtual const std::filesystem::path& data_dir() const = 0;
  virtual void add_hook(HookSpec hook) = 0;
  // The core keeps the objects for as long as any session of this generation needs them.
  virtual void add_protocol(std::shared_ptr<const Protocol> protocol) = 0;
  virtual void add_store(std::string name, std::shared_ptr<const StoreFactory> factory) = 0;
  // Started when this generation starts serving, told to stop when it is replaced or the server stops.
  virtual void add_service(std::shared_ptr<const Service> service) = 0;
  // A subcommand of the `tern` command line (tern/sdk/command.hpp).
  virtual void add_command(std::shared_ptr<const Command> command) = 0;
  // Used by TERN_PLUGIN: the entry point failed with this message; nothing of this call is kept.
  virtual void fail(std::string_view message) = 0;

 protected:
  ~Registrar() = default;
};

}  // namespace tern::sdk

#define TERN_PLUGIN_EXPORT extern "C" __attribute__((visibility("default")))

// Defines the manifest and the entry point; the braces that follow are the body of the registration
// function, with `registrar` in scope. Exceptions never cross into the core: they become registrar.fail().
#define TERN_PLUGIN(NAME, VERSION, PROVIDES)                                                                      \
  TERN_PLUGIN_EXPORT const tern_plugin_manifest tern_plugin_manifest_v1 = {                                       \
      TERN_PLUGIN_MAGIC, TERN_SDK_VERSION_MAJOR, TERN_SDK_VERSION_MINOR, NAME, VERSION, TERN_SDK_BUILD_SIGNATURE, \
      PROVIDES};                                                                                                  \
  static void tern_plugin_register([[maybe_unused]] ::tern::sdk::Registrar& registrar);                           \
  TERN_PLUGIN_EXPORT int tern_plugin_register_v1(::tern::sdk::Registrar* registrar) noexcept {                    \
    try {                                                                                                         \
      tern_plugin_register(*registrar);                                                                           \
      return 0;                                                                                                   \
    } catch (const std::exception& error) {                                                                       \
      registrar->fail(error.what());                                                                              \
    } catch (...) {                                                                                               \
      registrar->fail("unknown exception");                                                                       \
    }                                                                                                             \
    return 1;                                                                                                     \
  }                                                                                                               \
  static void tern_plugin_register([[maybe_unused]] ::tern::sdk::Registrar& registrar)
