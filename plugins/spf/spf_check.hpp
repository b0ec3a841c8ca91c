// RFC 7208's check_host(): whether a client address may send mail for a domain. Every lookup goes through
// `Dns`, awaited, so an evaluation never blocks its loop; its cost is bounded as section 4.6.4 says (10
// lookups of mechanisms and redirects, 2 that find nothing, 10 MX and 10 PTR names).
#pragma once

#include <utility>  // before Boost.Asio: Boost 1.74's awaitable.hpp needs it with g++ 12

#include <string>
#include <string_view>

#include "tern/sdk/protocol.hpp"

namespace tern::spf {

enum class Result { none, neutral, pass, fail, softfail, temperror, permerror };
std::string_view result_name(Result result);

// Where an evaluation asks DNS: the server's resolver in the plugin, a table in the tests.
class Dns {
 public:
  virtual sdk::Task<sdk::DnsAnswer> lookup(std::string name, sdk::DnsType type) = 0;

 protected:
  ~Dns() = default;
};

struct Query {
  std::string ip;      // the client's address
  std::string sender;  // MAIL FROM; "" (the null sender) checks the HELO identity, postmaster@helo
  std::string helo;
  std::string receiver;     // this server's name, for the explanation's %{r}
  long long timestamp = 0;  // for %{t}
};

struct Outcome {
  Result result = Result::none;
  std::string identity;     // the address checked: the sender, or postmaster@helo
  std::string domain;       // its domain
  std::string mechanism;    // the mechanism that decided, "default" when none matched
  std::string explanation;  // fail: the domain's explanation (exp=), else `default_explanation` expanded
  std::string problem;      // temperror, permerror: what went wrong
};

// check_host() for the query's identity. `default_explanation` is a macro-string (explanation syntax) used
// for a fail whose domain gives no explanation of its own.
sdk::Task<Outcome> check(Dns& dns, Query query, std::string default_explanation);

}  // namespace tern::spf
