// `tern serve`: the running server. Loads config and plugins, opens the store, listens, serves sessions on
// the event loops, reloads on SIGHUP and shuts down gracefully on SIGTERM.
#pragma once

#include <filesystem>
#include <string>

namespace tern::server {

// Runs in the foreground until SIGTERM or SIGINT. Returns the process exit code: 0 after a clean shutdown,
// 2 for a config error (printed as file:line: key: what), 1 for another failure to start.
int serve(const std::filesystem::path& config_file);

// `tern <service> run [TARGET]`: loads config and plugins as serve() does, opens the store, and runs the named
// service's run_once() in this process. Returns its exit code, 2 for a config error or no such service.
int run_service_once(const std::filesystem::path& config_file, const std::string& service, const std::string& target);

}  // namespace tern::server
