// A plugin's own section of the configuration file: [plugin.<name>].
#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tern/sdk/version.hpp"

namespace tern::sdk {

// Thrown by ConfigSection::fail(). Its message names file, line and key:
// "tern.toml:12: plugin.smtp.max_message_size: must be at least 1024 octets".
class TERN_SDK_VISIBLE ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Where a plugin reaches a service of its own: a TCP host and port, or a unix socket.
struct Endpoint {
  std::string host;  // a name or an IP address (IPv6 without brackets); empty for a unix socket
  std::uint16_t port = 0;
  std::string unix_path;  // the socket's path, for "unix:/path"; empty for TCP
};

// Read-only access to a plugin's config section, valid only during the plugin's registration call. A plugin
// reads what it needs there and keeps the values in an immutable object of its own.
//
// Errors are recorded, not thrown: a value of the wrong type, or one a check below refuses, adds an error naming
// file, line and key, the read returns what the plugin would have used without the key, and the plugin reads
// on. When the registration call returns, the core reports every error of the section together, and a plugin
// with any takes no part in the generation (at start-up the server refuses to start; a reload keeps the old
// generation). Every key the plugin did not read is reported too, so a misspelt option is an error, not ignored.
class ConfigSection {
 public:
  // nullopt when the key is absent, or (an error recorded) of another type.
  virtual std::optional<std::string> get_string(std::string_view key) const = 0;
  virtual std::optional<std::int64_t> get_integer(std::string_view key) const = 0;
  virtual std::optional<bool> get_bool(std::string_view key) const = 0;
  virtual std::optional<std::vector<std::string>> get_strings(std::string_view key) const = 0;
  virtual std::optional<std::vector<std::int64_t>> get_integers(std::string_view key) const = 0;
  // An array of tables ([[plugin.fetch.account]]): one section for each, valid as long as this one, whose
  // keys are checked the same way. Empty when absent.
  virtual std::vector<const ConfigSection*> get_tables(std::string_view key) const = 0;
  // Whether the key is there with a string value: for values that may be written either way (duration(),
  // size()). Does not count as reading the key.
  virtual bool holds_string(std::string_view key) const = 0;
  // Records an error for a value of the right type that the plugin refuses, and carries on.
  virtual void error(std::string_view key, std::string_view what) const = 0;
  // Records the error and throws ConfigError: for a plugin that cannot go on reading (its registration ends,
  // and the core reports what was recorded).
  [[noreturn]] virtual void fail(std::string_view key, std::string_view what) const = 0;

  // The checked reads. Each takes the value the plugin uses when the key is absent, and returns it too when the
  // key's value is refused (with the error recorded).

  // An integer from `lowest` to `highest`; `unit` ("seconds", "octets") is named in the error.
  std::int64_t integer(std::string_view key, std::int64_t fallback, std::int64_t lowest,
                       std::int64_t highest = std::numeric_limits<std::int64_t>::max(),
                       std::string_view unit = {}) const {
    const std::optional<std::int64_t> value = get_integer(key);
    if (!value) return fallback;
    if (*value >= lowest && *value <= highest) return *value;
    error(key, range_text(lowest, highest, unit));
    return fallback;
  }

  // A TCP port, 1 to 65535.
  std::uint16_t port(std::string_view key, std::uint16_t fallback) const {
    return static_cast<std::uint16_t>(integer(key, fallback, 1, 65535));
  }

  // A string that must be there and not be empty ("is required").
  std::string required_string(std::string_view key) const {
    std::optional<std::string> value = get_string(key);
    if (!value || value->empty()) {
      error(key, "is required");
      return {};
    }
    return std::move(*value);
  }

  // One of a fixed set of names, each standing for a value of the plugin's: `names` in the order the error lists
  // them ("must be \"a\", \"b\" or \"c\""), matched exactly. `fallback` is the value for an absent key.
  template <typename T>
  T choice(std::string_view key, T fallback, std::initializer_list<std::pair<std::string_view, T>> names) const {
    const std::optional<std::string> value = get_string(key);
    if (!value) return fallback;
    std::string listed;
    std::size_t index = 0;
    for (const auto& [name, meaning] : names) {
      if (*value == name) return meaning;
      listed += (index == 0 ? "" : index + 1 == names.size() ? " or " : ", ") + ("\"" + std::string(name) + "\"");
      ++index;
    }
    error(key, "must be " + listed);
    return fallback;
  }

  // A duration from `lowest` to `highest`: a number of seconds (90), or a number with a unit: "90s", "30m",
  // "12h", "5d".
  std::chrono::seconds duration(std::string_view key, std::chrono::seconds fallback, std::chrono::seconds lowest,
                                std::chrono::seconds highest) const {
    const std::optional<std::int64_t> seconds =
        scaled(key, {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}},
               "a number of seconds, or one with a unit: \"30m\", \"12h\", \"5d\"");
    if (!seconds) return fallback;
    if (*seconds >= lowest.count() && *seconds <= highest.count()) return std::chrono::seconds(*seconds);
    error(key, range_text(lowest.count(), highest.count(), "seconds"));
    return fallback;
  }

  // A size in octets from `lowest` to `highest`: a number (65536), or a number with a unit of 1024: "64K",
  // "25M", "1G".
  std::uint64_t size(std::string_view key, std::uint64_t fallback, std::uint64_t lowest,
                     std::uint64_t highest = std::numeric_limits<std::int64_t>::max()) const {
    const std::optional<std::int64_t> octets =
        scaled(key, {{'K', 1024}, {'M', 1024 * 1024}, {'G', 1024 * 1024 * 1024}},
               "a number of octets, or one with a unit: \"64K\", \"25M\", \"1G\"");
    if (!octets) return fallback;
    const auto value = static_cast<std::uint64_t>(*octets);
    if (value >= lowest && value <= highest) return value;
    error(key, range_text(static_cast<std::int64_t>(lowest), static_cast<std::int64_t>(highest), "octets"));
    return fallback;
  }

  // Where a service listens: "unix:/path/to/socket", "host:port", "[2001:db8::1]:port", or a host alone when
  // `default_port` is not 0. nullopt when the key is absent or its value refused.
  std::optional<Endpoint> endpoint(std::string_view key, std::uint16_t default_port = 0) const {
    const std::optional<std::string> value = get_string(key);
    if (!value) return std::nullopt;
    Endpoint found;
    if (value->starts_with("unix:/")) {
      found.unix_path = value->substr(5);
      return found;
    }
    std::string_view rest = *value;
    std::string_view port;
    if (rest.starts_with("[")) {
      const std::size_t close = rest.find(']');
      if (close != std::string_view::npos && (close + 1 == rest.size() || rest[close + 1] == ':')) {
        port = close + 1 == rest.size() ? std::string_view() : rest.substr(close + 2);
        rest = rest.substr(1, close - 1);
      } else {
        rest = {};
      }
    } else if (const std::size_t colon = rest.rfind(':'); colon != std::string_view::npos) {
      port = rest.substr(colon + 1);
      rest = rest.substr(0, colon);
    }
    found.host = std::string(rest);
    found.port = port.empty() ? default_port : parse_port(port);
    const bool usable = !found.host.empty() && found.port != 0 &&
                        found.host.find_first_of(" /[]") == std::string::npos &&
                        (found.host.find(':') == std::string::npos || value->starts_with("["));
    if (usable) return found;
    error(key, default_port == 0 ? "must be \"unix:/path\" or \"host:port\""
                                 : "must be \"unix:/path\", \"host:port\" or a host");
    return std::nullopt;
  }

 protected:
  ~ConfigSection() = default;

 private:
  static std::string range_text(std::int64_t lowest, std::int64_t highest, std::string_view unit) {
    const std::string suffix = unit.empty() ? std::string() : " " + std::string(unit);
    if (highest == std::numeric_limits<std::int64_t>::max()) {
      return lowest == 1 ? "must be a positive integer" : "must be at least " + std::to_string(lowest) + suffix;
    }
    return "must be " + std::to_string(lowest) + " to " + std::to_string(highest) + suffix;
  }

  static std::uint16_t parse_port(std::string_view text) {
    std::uint32_t port = 0;
    for (char c : text) {
      if (c < '0' || c > '9' || text.size() > 5) return 0;
      port = port * 10 + static_cast<std::uint32_t>(c - '0');
    }
    return port <= 65535 ? static_cast<std::uint16_t>(port) : 0;
  }

  // An integer, or a string of digits and one of `units`' letters (any case) that scales it; nullopt when
  // absent or refused (with `what` as the error).
  std::optional<std::int64_t> scaled(std::string_view key, std::initializer_list<std::pair<char, std::int64_t>> units,
                                     std::string_view what) const {
    if (!holds_string(key)) return get_integer(key);
    const std::optional<std::string> text = get_string(key);
    if (!text) return std::nullopt;
    std::int64_t number = 0;
    std::size_t digits = 0;
    while (digits < text->size() && digits < 15 && (*text)[digits] >= '0' && (*text)[digits] <= '9') {
      number = number * 10 + ((*text)[digits++] - '0');
    }
    if (digits > 0 && digits + 1 == text->size()) {
      const char unit = (*text)[digits];
      for (const auto& [letter, scale] : units) {
        if (unit == letter || unit == static_cast<char>(letter ^ 0x20)) return number * scale;
      }
    }
    error(key, "must be " + std::string(what));
    return std::nullopt;
  }
};

}  // namespace tern::sdk
