#include <catch2/catch.hpp>

#include "pipe_program.hpp"

using tern::outbound::PipeOutcome;
using tern::outbound::run_pipe_program;

namespace {

PipeOutcome shell(const std::string& script, const std::string& message, int timeout = 10) {
  return run_pipe_program({"/bin/sh", "-c", script}, {"RECIPIENT=bob@example.test"}, message,
                          std::chrono::seconds(timeout));
}

}  // namespace

TEST_CASE("A pipe program that exits 0 took the message; 75 asks for a retry; other codes bounce with its words") {
  CHECK(shell("cat >/dev/null", "hello\r\n").kind == PipeOutcome::Kind::delivered);
  const PipeOutcome retry = shell("cat >/dev/null; echo busy; exit 75", "x");
  CHECK(retry.kind == PipeOutcome::Kind::temporary);
  CHECK(retry.diagnostic.find("busy") != std::string::npos);
  const PipeOutcome refused = shell("echo \"no ticket for $RECIPIENT\"; exit 1", "x");
  CHECK(refused.kind == PipeOutcome::Kind::permanent);
  CHECK(refused.diagnostic.rfind("5.3.0", 0) == 0);
  CHECK(refused.diagnostic.find("no ticket for bob@example.test") != std::string::npos);
}

TEST_CASE("A pipe program that does not read its input, or never ends, is bounded") {
  const std::string big(4 * 1024 * 1024, 'x');
  CHECK(shell("exit 0", big).kind == PipeOutcome::Kind::delivered);
  const PipeOutcome slow = shell("exec >/dev/null 2>&1; sleep 30", "x", 1);
  CHECK(slow.kind == PipeOutcome::Kind::temporary);
  CHECK(slow.diagnostic.find("longer than 1 s") != std::string::npos);
  CHECK(run_pipe_program({"/nonexistent/program"}, {}, "x", std::chrono::seconds(5)).kind ==
        PipeOutcome::Kind::temporary);
}
