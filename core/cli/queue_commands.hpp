// `tern queue ...`: the administrator's view of the outbound queue and their tools on it.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>

namespace tern::cli {

// Adds the `queue` subcommand and its own to `app`. Each sets `action` to its body when chosen; `config_file`
// is read when the body runs (after parsing).
void add_queue_commands(CLI::App& app, const std::string& config_file, std::function<int()>& action);

}  // namespace tern::cli
