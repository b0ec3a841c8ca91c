// A pipe route's program: the message on its standard input, its exit code the verdict.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace tern::outbound {

struct PipeOutcome {
  enum class Kind { delivered, temporary, permanent } kind = Kind::temporary;
  std::string diagnostic;  // an enhanced code and the reason: "5.3.0 /usr/bin/x exited 1: no such ticket"
};

// Runs `command` (no shell) with `environment` added to a minimal one, writes `message` to its stdin and reads
// at most a few KiB of its combined output, for at most `timeout`. Exit 0 is delivered; EX_TEMPFAIL (75), a
// timeout, a signal or a program that cannot be started are temporary; any other exit code is permanent.
// Blocks; run it on the worker pool.
PipeOutcome run_pipe_program(const std::vector<std::string>& command, const std::vector<std::string>& environment,
                             const std::string& message, std::chrono::seconds timeout);

}  // namespace tern::outbound
