// `tern script ...`: users' own delivery scripts (Lua, run at `deliver` by the lua plugin for their mail).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>

namespace tern::cli {

// Adds the `script` subcommand and its own to `app`, as add_queue_commands does.
void add_script_commands(CLI::App& app, const std::string& config_file, std::function<int()>& action);

}  // namespace tern::cli
