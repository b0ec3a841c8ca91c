// The server log: spdlog as text or JSON lines, and the named logs handed to plugins and sessions.
#pragma once

#include <string>

#include "config/server_config.hpp"
#include "tern/sdk/log.hpp"

namespace tern::logging {

// Points the default logger at standard error or the configured file, in the configured format and level.
// Throws std::runtime_error when the file cannot be opened.
void configure(const config::LogSettings& settings);
// The command line's log, until a command that serves calls configure(): standard error, so that standard output
// holds only what a command prints (`tern dkim show` into a zone file).
void to_standard_error();

// A log whose lines start with a name: a plugin's, or a session's id.
class NamedLog final : public sdk::Log {
 public:
  explicit NamedLog(std::string name) : name_(std::move(name)) {}
  void write(sdk::LogLevel level, std::string_view message) override;
  const std::string& name() const { return name_; }

 private:
  std::string name_;
};

}  // namespace tern::logging
