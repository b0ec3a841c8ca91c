// The `tern` command line: one binary, subcommands, each taking -c FILE.
#pragma once

namespace tern::cli {

// Parses the command line and runs the subcommand. Returns the exit code: 0 on success, 1 for a failure,
// 2 for a bad config file or bad usage.
int run(int argc, char** argv);

}  // namespace tern::cli
