// Delivery status notifications (RFC 3464): the bounce, delay notice or relay notice a sender gets.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tern/sdk/store.hpp"

namespace tern::outbound {

struct DsnRecipient {
  std::string address;
  std::string orcpt;       // as queued: "rfc822;user@example.org", or ""
  std::string action;      // "failed", "delayed", "relayed" or "delivered" (RFC 3464 section 2.3.3)
  std::string diagnostic;  // an SMTP reply ("550 5.1.1 ...") or our own reason ("5.1.10 Domain ...")
  std::string remote_host;
};

struct DsnReport {
  std::string reporting_host;  // our hostname
  std::string sender;          // the original envelope sender: the DSN's recipient
  std::string envid;
  std::string ret;  // "HDRS": the original's header only; otherwise the whole message (up to a size bound)
  std::int64_t arrival = 0;
  std::vector<DsnRecipient> recipients;
};

// The enhanced status code (RFC 3463) a diagnostic carries, or one derived from its reply code.
std::string status_of(std::string_view diagnostic, std::string_view action);
// The whole DSN message, CRLF line ends, from the null sender's MAILER-DAEMON.
std::string compose_dsn(const DsnReport& report, std::string_view original, std::int64_t now);
// Whether NOTIFY asks for a notice of this kind ("FAILURE", "DELAY", "SUCCESS"). Without NOTIFY, failures and
// delays are reported (RFC 3461 section 4.1 leaves the default to us; this is the usual one).
bool notify_wants(std::string_view notify, std::string_view kind);

}  // namespace tern::outbound
