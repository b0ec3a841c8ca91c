// What a hook sees and how it is registered. No Asio here: a filter plugin includes only this header,
// verdict.hpp and plugin.hpp.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "tern/sdk/stage.hpp"
#include "tern/sdk/verdict.hpp"

namespace tern::sdk {

// The client of a session, as far as the session knows it so far.
struct ClientInfo {
  std::string session_id;  // unique per connection, also in every log line of the session
  std::string protocol;    // the listener's protocol: "smtp", "submission", "pop3", ...
  std::string address;     // the client's IP address, without port
  std::uint16_t port = 0;
  std::string helo;  // SMTP HELO/EHLO argument, empty before it
  bool tls = false;
  std::string user;  // the authenticated user's address, empty when not authenticated
};

// One accepted recipient, with its delivery status notification request (RFC 3461 section 4).
struct Recipient {
  std::string address;
  std::string notify;  // "" (not given), "NEVER", or a comma list of SUCCESS, FAILURE, DELAY
  std::string orcpt;   // the original recipient as given: "rfc822;user@example.org" (xtext decoded)
};

// The SMTP envelope of the transaction under way. The DSN fields are kept with the message so that whoever
// delivers it can honour them.
struct Envelope {
  std::string sender;                 // reverse-path without brackets; empty for the null sender <>
  std::vector<Recipient> recipients;  // recipients accepted so far
  std::string ret;                    // DSN RET: "", "FULL" or "HDRS"
  std::string envid;                  // DSN ENVID, xtext decoded
  bool smtputf8 = false;              // MAIL ... SMTPUTF8 (RFC 6531): addresses and headers may be UTF-8
  bool eight_bit = false;             // MAIL ... BODY=8BITMIME (or BINARYMIME with BDAT)
};

// The view a hook has of the session and transaction at its stage. It lives only for the duration of the
// hook call: a hook must not keep a pointer or reference to it, or to anything it returns.
// Calling an accessor at a stage that does not know the answer throws std::logic_error naming the stage;
// the runner turns that into a logged `defer`.
class HookContext {
 public:
  virtual Stage stage() const = 0;
  virtual const ClientInfo& client() const = 0;
  // The envelope from `mail` up to `queued`; nullptr outside a transaction.
  virtual const Envelope* envelope() const = 0;
  // At `rcpt`: the recipient being decided on (not yet in envelope()->recipients). At `deliver`: the local user
  // whose copy is being filed.
  virtual std::string_view recipient() const = 0;
  // At `message` and `queued`: the message exactly as received (headers, blank line, body), CRLF line ends. At
  // `deliver`: the message as stored, with the server's trace fields on top.
  virtual std::string_view message() const = 0;
  // At `message`: adds a header field on top of the message. Name and value must not contain CR or LF.
  virtual void add_header(std::string_view name, std::string_view value) = 0;
  // At `message`: removes every header field called `name` (any case) from the message as received, and returns
  // how many; message() shows the result. Fields add_header() added are not touched. To change a field, remove
  // it and add it again. Other stages keep this default, which throws std::logic_error.
  virtual std::size_t remove_header(std::string_view) { unavailable("remove_header()"); }
  // At `message`: the envelope, rewritten (as a milter's change of sender and recipients would). The changes
  // apply once every `message` hook has run; envelope() shows the envelope as the client gave it.
  // set_sender: the reverse-path from now on, where reports go; "" is the null sender.
  virtual void set_sender(std::string_view) { unavailable("set_sender()"); }
  // add_recipient: the message goes to this address too, local or not: no relay check, the hook is the
  // administrator's. An address of a local domain that nobody receives is logged and skipped.
  virtual void add_recipient(std::string_view) { unavailable("add_recipient()"); }
  // remove_recipient: the message does not go to this recipient of the envelope (any case), nor to the users
  // and addresses it leads to. False when the envelope has no such recipient.
  virtual bool remove_recipient(std::string_view) { unavailable("remove_recipient()"); }
  // At `deliver`: the user's copy is filed with this IMAP flag as well: a system flag ("\\Flagged", "\\Seen") or a
  // keyword atom ("$Label1"). std::invalid_argument for anything else.
  virtual void add_flag(std::string_view) { unavailable("add_flag()"); }
  // At `deliver`: a copy also goes to `address`, under the message's envelope sender, besides the user's own
  // copy (which a `discard` verdict drops: then the redirect is all that is left). A copy that already passed
  // this user (a Delivered-To naming them) is not redirected again, so two users redirecting to each other
  // do not loop. std::invalid_argument for an address that is not one.
  virtual void redirect(std::string_view) { unavailable("redirect()"); }

 protected:
  ~HookContext() = default;
  [[noreturn]] void unavailable(const char* what) const {
    throw std::logic_error(std::string(what) + " is not available at stage " + std::string(stage_name(stage())));
  }
};

// A hook: called on the event loop of the session it judges, possibly on several loops at once, so it must
// be thread-safe and must not block (no file or network I/O, no sleeping). An exception thrown from it is
// caught by the runner, logged with the hook's name and becomes `defer 451 4.3.0`.
using HookFunction = std::function<Verdict(HookContext&)>;

// A hook that may wait (on the network, on the store) without blocking its loop: tern/sdk/async_hook.hpp.
class AsyncHook;

struct HookSpec {
  std::string name;  // shown in logs; conventionally "<plugin>.<what>"
  Stage stage = Stage::connect;
  int priority = 0;  // lower runs first; equal priorities run in registration order
  HookFunction function;
  // Instead of `function`: a hook that waits. Exactly one of the two is set.
  std::shared_ptr<const AsyncHook> async_hook;
};

}  // namespace tern::sdk
