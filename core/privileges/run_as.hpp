// Dropping root for the configured [server] user and group (config::RunAs). Used by `tern serve` once its
// ports are bound and its keys read, and by the commands that open the store, so that nothing in the data
// folder is ever made by root while the server runs as someone else.
#pragma once

#include <filesystem>

#include "config/server_config.hpp"

namespace tern::privileges {

// Gives `path` and everything under it to the user and group, tightened: folders 0700, files 0600. Symbolic
// links are neither followed nor changed. Needs root.
void hand_over(const std::filesystem::path& path, const config::RunAs& run_as);

// Becomes the user for good: only its group, then the group ids, then the user ids (real, effective and
// saved), then checks that root cannot be had back. Throws std::runtime_error when any step fails.
void become(const config::RunAs& run_as);

// What serve and the store commands call once they made the data folder, before they touch what is in it:
// when running as root with [server] user set, hands the folder over and becomes the user; as root without it, the
// server warns (`warn_when_root`) that it keeps running as root; otherwise nothing.
void settle(const config::ServerConfig& config, bool warn_when_root);

}  // namespace tern::privileges
