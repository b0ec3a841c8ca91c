// Where a message goes: each recipient resolved against the directory (aliases, catch-alls, the postmaster), and
// the whole message's local users, remote recipients and forwarding aliases gathered from them.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "tern/sdk/hook.hpp"
#include "tern/sdk/store.hpp"

namespace tern::intake {

// Where one recipient's mail goes.
struct Resolution {
  bool local = false;                 // the address is of a local domain
  std::vector<std::string> users;     // the local users it reaches
  sdk::RecipientExpansion expansion;  // with the outside addresses its aliases forward to, and those aliases

  // A local address that nobody receives: refused at RCPT (550 5.1.1), skipped when a hook adds it.
  bool nobody() const { return local && users.empty() && expansion.forwards.empty(); }
};

// Resolves one recipient. "postmaster" alone (RFC 5321 section 4.5.1) becomes the postmaster of the server's own
// domain `hostname`, else of the first local domain that has one, and `recipient.address` is rewritten to it.
// Reads the directory: call it off the loop.
Resolution resolve(sdk::Directory& directory, std::string_view hostname, sdk::Recipient& recipient);

// Where a whole message goes, built recipient by recipient.
struct Destinations {
  std::vector<std::string> users;      // local users, each once
  std::vector<sdk::Recipient> remote;  // for the outbound queue: outside recipients and the addresses aliases
                                       // forward to, each once, with their DSN requests
  std::vector<std::string> aliases;    // the aliases that forward it outside: marked in Delivered-To, and a
                                       // message that already carries such a mark is a loop

  // Adds one accepted recipient. A forwarded copy keeps the DSN request and the original recipient of the
  // address the client gave (RFC 3461 section 5.2.1).
  void add(const sdk::Recipient& recipient, const Resolution& resolution);
};

}  // namespace tern::intake
