// The intake step: the one way a message is filed, whatever brought it (an SMTP client, a collected mailbox,
// Tern's own notices and replies, and later ETRN/ODMR and import). It runs the `message` hooks, applies their
// envelope changes, composes the trace fields, checks for loops and quotas, runs the `deliver` hooks for each
// local user, expands their redirects, files everything through the store in one durable commit, wakes the
// sessions watching those mailboxes and runs the `queued` hooks. The caller only turns the Outcome into its
// protocol's answer.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "destinations.hpp"
#include "tern/sdk/protocol.hpp"

namespace tern::intake {

// RFC 5321 section 6.3 leaves the limit to us; 50 is what Postfix counts to.
inline constexpr std::size_t kMaxHops = 50;

// Who wrote the message, which decides the stages it meets.
enum class Origin {
  // From outside (SMTP, a collected mailbox): `message` hooks, loop and quota checks, `deliver`, `queued`.
  received,
  // Tern's own (a delivery status notification, an automatic reply): `deliver` hooks only; nothing refuses it for
  // size, and it carries no trace field of ours.
  server,
};

// A message to file, and what its entry knows of it.
struct Incoming {
  Origin origin = Origin::received;
  sdk::ClientInfo client;        // who brought it; for Tern's own mail, protocol "local"
  sdk::Envelope envelope;        // sender and recipients as given, before any hook changed them
  Destinations destinations;     // where it goes (resolve() each recipient, then add()); hooks may change it
  std::string message;           // as received: header, blank line, body, CRLF line ends
  std::string name;              // what the log calls it (SMTP's queue id)
  std::string folder = "INBOX";  // where local copies go unless a hook decides otherwise
  // A discard or quarantine decided before the message arrived (SMTP's `data` stage); it stands over the
  // `message` hooks' accept or quarantine.
  sdk::Verdict early_verdict;
  // The protocol's trace field, "Received: ...\r\n" (received mail; RFC 5321 section 4.4), written on top.
  std::string received_field;
  // Fields the protocol adds under the trace, given the message as hooks left it: submission's missing Date and
  // Message-ID (RFC 6409 section 8). Optional.
  std::function<std::string(std::string_view)> extra_fields;
  // State written in the same commit as the message, or alone when every copy is discarded (sdk::Intake::state).
  std::vector<sdk::StateChange> state;
};

// What became of it. For any status but stored and discarded, `reply` says why in SMTP's words (code, enhanced code,
// text), which other protocols log.
struct Outcome {
  enum class Status {
    stored,      // filed and queued as `users` and `remote` say; durable
    discarded,   // a hook dropped it (its state was written)
    refused,     // a hook refused it (the hook's reply), or it loops (554 5.4.6)
    over_quota,  // no recipient has room: 452 4.2.2 while a mailbox is full, 552 5.2.2 when it never fits
    store_full,  // the disk or database is full (452 4.3.1): nothing of it was kept
    failed,      // the store failed (451 4.3.0): nothing of it was kept
  };
  Status status = Status::failed;
  sdk::Verdict reply;
  sdk::Stage refused_at = sdk::Stage::message;  // refused: whose hooks refused it (message or deliver)
  std::string stored;                           // the message as filed, trace fields on top
  std::vector<std::string> users;               // the users a copy was filed for
  std::vector<std::string> remote;              // the addresses queued for

  bool accepted() const { return status == Status::stored || status == Status::discarded; }
};

// Files `incoming`. Runs on the caller's loop; store work goes to the worker pool. Never throws for a store
// failure: that is an Outcome.
sdk::Task<Outcome> receive(sdk::ServerContext& server, Incoming incoming);

}  // namespace tern::intake
