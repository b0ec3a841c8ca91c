// An administrative command a plugin adds to the `tern` command line: `tern <name> ARGUMENTS...` (`tern script
// upload`, `tern fetch run`). This header brings in Boost.Asio's coroutine types, as service.hpp does.
#pragma once

#include <string>
#include <vector>

#include "tern/sdk/service.hpp"

namespace tern::sdk {

// Registered with Registrar::add_command. One object a generation; the command line builds one generation and
// runs one command, in its own process, while the server may be running.
class Command {
 public:
  virtual ~Command() = default;
  // The word after `tern`: lower-case letters, digits and '-'. A name the core's own commands use (serve,
  // config, plugins, domain, user, alias, queue) or another plugin's is refused at registration.
  virtual std::string name() const = 0;
  // One line for `tern --help` and `tern plugins`.
  virtual std::string summary() const = 0;
  // Runs the command on `arguments`, the words after its name, with what the server would give a service: the
  // store (opened as the server's user), the hooks of the configuration, DNS and outbound connections, on a loop
  // of the command's own. Output goes to standard output, errors to standard error. Returns the exit code: 0
  // done, 1 failed (the store refused, a peer did not answer), 2 bad usage. An exception that escapes is
  // printed and exits 1.
  virtual Task<int> run(ServiceContext& context, std::vector<std::string> arguments) const = 0;
};

}  // namespace tern::sdk
