// The server's log, as a plugin writes to it.
#pragma once

#include <string_view>

namespace tern::sdk {

enum class LogLevel { debug, info, warn, error };

// Thread-safe; lines go to the server's log sink (text or JSON lines) with the plugin's name attached.
class Log {
 public:
  virtual void write(LogLevel level, std::string_view message) = 0;
  void debug(std::string_view message) { write(LogLevel::debug, message); }
  void info(std::string_view message) { write(LogLevel::info, message); }
  void warn(std::string_view message) { write(LogLevel::warn, message); }
  void error(std::string_view message) { write(LogLevel::error, message); }

 protected:
  ~Log() = default;
};

}  // namespace tern::sdk
