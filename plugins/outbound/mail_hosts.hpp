// The hosts that take mail for a domain (RFC 5321 section 5.1, RFC 7505), from the server's DNS.
#pragma once

#include <string>
#include <vector>

#include "tern/sdk/protocol.hpp"

namespace tern::outbound {

struct MailHost {
  std::string name;  // the exchanger's name, or the domain itself when it has no MX
  std::vector<std::string> addresses;
};

struct MxAnswer {
  enum class Outcome {
    found,           // `hosts` in the order to try them
    no_such_domain,  // NXDOMAIN, or no MX and no address: permanent
    null_mx,         // RFC 7505: the domain takes no mail
    temporary,       // the DNS did not answer, or answered SERVFAIL: try later
    loop,            // this server is the domain's best MX: a configuration error, waited out like a temporary one
  };
  Outcome outcome = Outcome::temporary;
  std::vector<MailHost> hosts;
  std::string error;  // why, for the diagnostic, when not found
};

// MX sorted by preference (equal preferences shuffled), each with its IPv4 then IPv6 addresses; the domain's own
// addresses when it has no MX. `self` is this server's name: it and the exchangers no better than it are left
// out.
sdk::Task<MxAnswer> find_mail_hosts(sdk::ServerContext& server, std::string domain, std::string self);

}  // namespace tern::outbound
