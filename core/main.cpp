#include <csignal>

#include "cli/commands.hpp"

int main(int argc, char** argv) {
  // A write to a pipe whose reader left (a pipe route's program) must fail with EPIPE, not end the server.
  std::signal(SIGPIPE, SIG_IGN);
  return tern::cli::run(argc, argv);
}
