// `tern domain|user|alias ...`: the directory, and users' passwords and quotas.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>

namespace tern::cli {

// Adds the `domain`, `user` and `alias` subcommands to `app`; the chosen one's body goes to `action`.
void add_directory_commands(CLI::App& app, const std::string& config_file, std::function<int()>& action);

}  // namespace tern::cli
