// `tern serve`: the running server. Loads config and plugins, opens the store, listens, serves sessions on
// the event loops, reloads on SIGHUP and shuts down gracefully on SIGTERM.
#pragma once

#include <filesystem>

namespace tern::server {

// Runs in the foreground until SIGTERM or SIGINT. Returns the process exit code: 0 after a clean shutdown,
// 2 for a config error (printed as file:line: key: what), 1 for another failure to start.
int serve(const std::filesystem::path& config_file);

}  // namespace tern::server
