// The POP3 client side (RFC 1939, STLS from RFC 2595) over a core connection: just what collecting a
// maildrop needs.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tern/sdk/protocol.hpp"

namespace tern::fetch {

class Pop3Client {
 public:
  explicit Pop3Client(sdk::Connection& connection) : connection_(connection) {}

  // Each returns false (or nullopt) on an -ERR or a broken connection; error() then says what happened.
  sdk::Task<bool> greeting();
  sdk::Task<bool> start_tls();
  sdk::Task<bool> login(std::string user, std::string password);
  // (message number, UIDL) of every message.
  sdk::Task<std::optional<std::vector<std::pair<int, std::string>>>> list_uidls();
  // The message, dot-stuffing undone, CRLF line ends.
  sdk::Task<std::optional<std::string>> retrieve(int number);
  sdk::Task<bool> remove(int number);
  sdk::Task<bool> quit();
  const std::string& error() const { return error_; }

 private:
  // Sends a command line (when not empty) and reads the status line; true for +OK.
  sdk::Task<bool> command(std::string line, std::string shown);
  // The lines of a multi-line reply up to ".", dot-stuffing undone, each ending in CRLF.
  sdk::Task<std::optional<std::string>> multiline();

  sdk::Connection& connection_;
  std::string status_;
  std::string error_;
};

}  // namespace tern::fetch
