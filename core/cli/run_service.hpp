// `tern <service> run [TARGET]`: a service's on-demand pass in the command's own process.
#pragma once

#include <filesystem>
#include <string>

namespace tern::cli {

// Loads config and plugins as `tern serve` does, opens the store, and runs the named service's run_once() with
// the context the server would give it. Returns its exit code; 2 when no such service is configured. A bad
// config throws config::ConfigInvalid.
int run_service_once(const std::filesystem::path& config_file, const std::string& service, const std::string& target);

}  // namespace tern::cli
