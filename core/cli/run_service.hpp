// What the command line runs with the context a service gets: a service's on-demand pass (`tern queue flush`
// runs outbound's) and the commands plugins add (`tern script`, `tern fetch`).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace tern::cli {

// Loads config and plugins as `tern serve` does, opens the store, and runs the named service's run_once() with
// the context the server would give it. Returns its exit code; 2 when no such service is configured. A bad
// config throws config::ConfigInvalid.
int run_service_once(const std::filesystem::path& config_file, const std::string& service, const std::string& target);

// `tern NAME ARGUMENTS...` for a command a plugin registered: its exit code, or nullopt when no loaded plugin
// provides NAME. A bad config throws config::ConfigInvalid.
std::optional<int> run_plugin_command(const std::filesystem::path& config_file, const std::string& name,
                                      std::vector<std::string> arguments);

}  // namespace tern::cli
