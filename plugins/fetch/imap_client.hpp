// The IMAP client side (RFC 3501, STARTTLS) over a core connection: what collecting one mailbox needs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tern/sdk/protocol.hpp"

namespace tern::fetch {

class ImapClient {
 public:
  explicit ImapClient(sdk::Connection& connection) : connection_(connection) {}

  // Each returns false (or nullopt) on a NO, a BAD or a broken connection; error() then says what happened.
  sdk::Task<bool> greeting();
  sdk::Task<bool> start_tls();
  sdk::Task<bool> login(std::string user, std::string password);
  // Selects the mailbox; its UIDVALIDITY, 0 when the server sent none.
  sdk::Task<std::optional<std::uint32_t>> select(std::string mailbox);
  // The UIDs of the messages not marked \Deleted, ascending.
  sdk::Task<std::optional<std::vector<std::uint32_t>>> uids();
  // The whole message, without setting \Seen.
  sdk::Task<std::optional<std::string>> fetch(std::uint32_t uid);
  // Adds flags to one message ("\\Seen", "\\Deleted").
  sdk::Task<bool> add_flags(std::uint32_t uid, std::string flags);
  // Removes the messages marked \Deleted and leaves the mailbox (CLOSE).
  sdk::Task<bool> close();
  sdk::Task<bool> logout();
  const std::string& error() const { return error_; }

 private:
  // Sends a tagged command and reads up to its tagged reply; the untagged replies, literals inlined, go to
  // `untagged`. True for OK.
  sdk::Task<bool> command(std::string line, std::string shown, std::vector<std::string>* untagged = nullptr);
  // One whole response: a line, with any literals it announces read into it.
  sdk::Task<std::optional<std::string>> response();

  sdk::Connection& connection_;
  unsigned tag_ = 0;
  std::string error_;
};

}  // namespace tern::fetch
