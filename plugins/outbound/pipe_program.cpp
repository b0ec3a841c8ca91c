#include "pipe_program.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>

namespace tern::outbound {
namespace {

constexpr std::size_t kOutputLimit = 4096;
constexpr int kTempFail = 75;  // sysexits.h EX_TEMPFAIL

std::string first_line(const std::string& output) {
  std::string line = output.substr(0, output.find('\n'));
  if (!line.empty() && line.back() == '\r') line.pop_back();
  for (char& c : line) {
    if (static_cast<unsigned char>(c) < 32) c = ' ';
  }
  return line.substr(0, 200);
}

// Blocks SIGPIPE in the calling thread while it lives, and swallows one raised meanwhile: a program that stops
// reading its input makes write() fail with EPIPE instead of ending the whole process, whatever the process's
// own disposition of SIGPIPE.
class SigpipeBlocked {
 public:
  SigpipeBlocked() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_, &previous_);
  }
  ~SigpipeBlocked() {
    const timespec now{};
    while (sigtimedwait(&pipe_, nullptr, &now) == SIGPIPE) {
    }
    pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
  }
  SigpipeBlocked(const SigpipeBlocked&) = delete;
  SigpipeBlocked& operator=(const SigpipeBlocked&) = delete;

 private:
  sigset_t pipe_;
  sigset_t previous_;
};

}  // namespace

PipeOutcome run_pipe_program(const std::vector<std::string>& command, const std::vector<std::string>& environment,
                             const std::string& message, std::chrono::seconds timeout) {
  const SigpipeBlocked no_sigpipe;
  int input[2];
  int output[2];
  if (::pipe2(input, O_CLOEXEC) != 0) return {PipeOutcome::Kind::temporary, "4.3.0 cannot make a pipe"};
  if (::pipe2(output, O_CLOEXEC) != 0) {
    ::close(input[0]);
    ::close(input[1]);
    return {PipeOutcome::Kind::temporary, "4.3.0 cannot make a pipe"};
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, input[0], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, output[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, output[1], STDERR_FILENO);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  // Its own process group, so that a timeout ends whatever it started too.
  // The server ignores SIGPIPE; the program gets the default back, as from a shell.
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&attributes, 0);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attributes, &none);
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  posix_spawnattr_setsigdefault(&attributes, &defaults);
  std::vector<char*> argv;
  for (const std::string& part : command) argv.push_back(const_cast<char*>(part.c_str()));
  argv.push_back(nullptr);
  std::vector<std::string> env_strings{"PATH=/usr/local/bin:/usr/bin:/bin"};
  env_strings.insert(env_strings.end(), environment.begin(), environment.end());
  std::vector<char*> envp;
  for (const std::string& entry : env_strings) envp.push_back(const_cast<char*>(entry.c_str()));
  envp.push_back(nullptr);
  pid_t pid = 0;
  const int spawned = ::posix_spawn(&pid, argv[0], &actions, &attributes, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  ::close(input[0]);
  ::close(output[1]);
  if (spawned != 0) {
    ::close(input[1]);
    ::close(output[0]);
    return {PipeOutcome::Kind::temporary, fmt::format("4.3.0 cannot run {}: {}", command[0], std::strerror(spawned))};
  }
  ::fcntl(input[1], F_SETFL, O_NONBLOCK);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::size_t written = 0;
  std::string collected;
  bool input_open = true;
  bool output_open = true;
  bool timed_out = false;
  while (output_open) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd fds[2] = {{output[0], POLLIN, 0}, {input_open ? input[1] : -1, POLLOUT, 0}};
    if (::poll(fds, 2, static_cast<int>(left.count())) < 0 && errno != EINTR) break;
    if (fds[0].revents != 0) {
      char buffer[4096];
      const ssize_t got = ::read(output[0], buffer, sizeof buffer);
      if (got <= 0) {
        output_open = false;
      } else if (collected.size() < kOutputLimit) {
        collected.append(buffer, static_cast<std::size_t>(got));
      }
    }
    if (input_open && fds[1].revents != 0) {
      bool done = (fds[1].revents & POLLOUT) == 0;  // POLLERR or POLLHUP alone: the program closed its input
      if (!done) {
        const ssize_t put = ::write(input[1], message.data() + written, message.size() - written);
        if (put > 0) written += static_cast<std::size_t>(put);
        // All written, or the program stopped reading (EPIPE): either way it gets end of file.
        done = put < 0 ? errno != EAGAIN : written == message.size();
      }
      if (done) {
        ::close(input[1]);
        input_open = false;
      }
    }
  }
  if (input_open) ::close(input[1]);
  ::close(output[0]);
  // A program may close its output and go on running: the deadline holds for its exit too.
  int status = 0;
  bool reaped = false;
  while (!timed_out) {
    const pid_t done = ::waitpid(pid, &status, WNOHANG);
    reaped = done == pid;
    if (reaped || (done < 0 && errno != EINTR)) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      timed_out = true;
    } else {
      ::usleep(5000);
    }
  }
  if (timed_out) {
    ::kill(-pid, SIGKILL);
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  } else if (!reaped) {
    return {PipeOutcome::Kind::temporary, fmt::format("4.3.0 lost track of {}: {}", command[0], std::strerror(errno))};
  }
  const std::string said = first_line(collected);
  const std::string suffix = said.empty() ? "" : ": " + said;
  if (timed_out) {
    return {PipeOutcome::Kind::temporary, fmt::format("4.3.0 {} ran longer than {} s", command[0], timeout.count())};
  }
  if (WIFSIGNALED(status)) {
    return {PipeOutcome::Kind::temporary,
            fmt::format("4.3.0 {} was killed by signal {}{}", command[0], WTERMSIG(status), suffix)};
  }
  const int code = WEXITSTATUS(status);
  if (code == 0) return {PipeOutcome::Kind::delivered, fmt::format("2.0.0 {} took it{}", command[0], suffix)};
  if (code == kTempFail) {
    return {PipeOutcome::Kind::temporary, fmt::format("4.3.0 {} exited {}{}", command[0], code, suffix)};
  }
  return {PipeOutcome::Kind::permanent, fmt::format("5.3.0 {} exited {}{}", command[0], code, suffix)};
}

}  // namespace tern::outbound
