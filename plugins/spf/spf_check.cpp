#include "spf_check.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <optional>
#include <vector>

#include "spf_macro.hpp"
#include "spf_record.hpp"
#include "tern/sdk/text.hpp"

namespace tern::spf {

namespace {

constexpr int kMaxLookups = 10;        // mechanisms and modifiers that ask DNS (section 4.6.4)
constexpr int kMaxVoidLookups = 2;     // lookups that found nothing
constexpr std::size_t kMaxNames = 10;  // MX exchanges, and PTR names looked at

using sdk::DnsAnswer;
using sdk::DnsType;

// Whether a DNS query can be made for `name`: labels of 1 to 63 octets, 253 in all. A mechanism's target that
// cannot (an expansion made it so) is treated as a name that does not exist (sections 4.3 and 4.8).
bool queryable(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  if (name.empty() || name.size() > 253) return false;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= name.size(); ++i) {
    if (i < name.size() && name[i] != '.') continue;
    if (i == start || i - start > 63) return false;
    start = i + 1;
  }
  return true;
}

// Section 4.3: a domain that cannot be asked about (a label empty or over 63 octets, a single label, an address
// literal) has no SPF record.
bool checkable_domain(std::string_view domain) {
  if (!domain.empty() && domain.back() == '.') domain.remove_suffix(1);
  return queryable(domain) && domain.front() != '[' && domain.find('.') != std::string_view::npos;
}

Result result_of(char qualifier) {
  switch (qualifier) {
    case '-': return Result::fail;
    case '~': return Result::softfail;
    case '?': return Result::neutral;
    default: return Result::pass;
  }
}

bool is_void(const DnsAnswer& answer) {
  return answer.status == DnsAnswer::Status::no_domain || answer.status == DnsAnswer::Status::no_data;
}

// How one mechanism came out: matched or not, or an error that ends the evaluation.
struct Match {
  bool matched = false;
  Result error = Result::none;  // temperror or permerror
  std::string problem;
};

Match error(Result result, std::string problem) {
  return Match{false, result, std::move(problem)};
}

class Evaluation {
 public:
  Evaluation(Dns& dns, const Query& query, const inet::Address& ip, std::string default_explanation)
      : dns_(dns), ip_(ip), default_explanation_(std::move(default_explanation)) {
    values_.ipv6 = ip.v6;
    values_.ip = ip.dotted();
    values_.ip_text = ip.text();
    values_.helo = query.helo;
    values_.receiver = query.receiver;
    values_.timestamp = query.timestamp;
  }

  void set_sender(const std::string& identity) {
    const std::size_t at = identity.rfind('@');
    values_.local_part = at == std::string::npos || at == 0 ? "postmaster" : identity.substr(0, at);
    values_.sender_domain = at == std::string::npos ? identity : identity.substr(at + 1);
    values_.sender = values_.local_part + "@" + values_.sender_domain;
  }
  const MacroValues& values() const { return values_; }

  sdk::Task<Outcome> check_host(std::string domain);

 private:
  sdk::Task<Match> matches(const Mechanism& mechanism, const std::string& domain);
  sdk::Task<Match> matches_address(const std::string& target, int cidr4, int cidr6);
  sdk::Task<Match> matches_mx(const std::string& target, int cidr4, int cidr6);
  // The mechanism's or modifier's target expanded for `domain`; nullopt when it cannot be (a permerror).
  sdk::Task<std::optional<std::string>> target(const std::string& spec, const std::string& domain);
  sdk::Task<std::string> explain(const Record& record, const std::string& domain);
  // The client's names that resolve back to its address (section 5.5), found once.
  sdk::Task<std::vector<std::string>> validated_names();
  // The p macro's value for `domain`: a validated name in it if any, else any validated name, else "".
  sdk::Task<std::string> validated_name(const std::string& domain);
  // Counts a lookup that found nothing; false past the limit.
  bool note_void(const DnsAnswer& answer) { return !is_void(answer) || ++voids_ <= kMaxVoidLookups; }

  Dns& dns_;
  inet::Address ip_;
  std::string default_explanation_;
  MacroValues values_;
  int lookups_ = 0;
  int voids_ = 0;
  std::optional<std::vector<std::string>> validated_;
};

sdk::Task<Outcome> Evaluation::check_host(std::string domain) {
  Outcome outcome;
  outcome.domain = domain;
  if (!checkable_domain(domain)) co_return outcome;
  const DnsAnswer answer = co_await dns_.lookup(domain, DnsType::txt);
  if (answer.status == DnsAnswer::Status::failed) {
    outcome.result = Result::temperror;
    outcome.problem = fmt::format("looking up the SPF record of {}: {}", domain, answer.error);
    co_return outcome;
  }
  std::vector<std::string_view> records;
  for (const DnsAnswer::Record& record : answer.records) {
    if (is_spf_record(record.value)) records.push_back(record.value);
  }
  if (records.empty()) co_return outcome;
  outcome.result = Result::permerror;
  if (records.size() > 1) {
    outcome.problem = fmt::format("{} publishes {} SPF records", domain, records.size());
    co_return outcome;
  }
  std::optional<Record> record = parse_record(records[0], outcome.problem);
  if (!record) co_return outcome;
  for (const Mechanism& mechanism : record->mechanisms) {
    const Match match = co_await matches(mechanism, domain);
    if (match.error != Result::none) {
      outcome.result = match.error;
      outcome.problem = match.problem;
      co_return outcome;
    }
    if (!match.matched) continue;
    outcome.result = result_of(mechanism.qualifier);
    outcome.mechanism = mechanism.text;
    if (outcome.result == Result::fail) outcome.explanation = co_await explain(*record, domain);
    co_return outcome;
  }
  if (!record->redirect) {
    outcome.result = Result::neutral;
    outcome.mechanism = "default";
    co_return outcome;
  }
  if (++lookups_ > kMaxLookups) {
    outcome.problem = "more than 10 DNS lookups";
    co_return outcome;
  }
  const std::optional<std::string> redirect = co_await target(*record->redirect, domain);
  if (!redirect) {
    outcome.problem = "invalid redirect=" + *record->redirect;
    co_return outcome;
  }
  Outcome redirected = co_await check_host(*redirect);
  if (redirected.result == Result::none) {
    outcome.problem = fmt::format("redirect={}: no SPF record there", *redirect);
    co_return outcome;
  }
  co_return redirected;
}

sdk::Task<Match> Evaluation::matches(const Mechanism& mechanism, const std::string& domain) {
  using Kind = Mechanism::Kind;
  switch (mechanism.kind) {
    case Kind::all: co_return Match{true};
    case Kind::ip4:
    case Kind::ip6:
      co_return Match{ip_.in_network(mechanism.network, mechanism.network.v6 ? mechanism.cidr6 : mechanism.cidr4)};
    default: break;
  }
  if (++lookups_ > kMaxLookups) co_return error(Result::permerror, "more than 10 DNS lookups");
  const std::optional<std::string> name = co_await target(mechanism.domain_spec, domain);
  if (!name) co_return error(Result::permerror, "cannot expand " + mechanism.text);
  if (!queryable(*name) && mechanism.kind != Kind::include) co_return Match{false};
  switch (mechanism.kind) {
    case Kind::include: {
      const Outcome included = co_await check_host(*name);
      switch (included.result) {
        case Result::pass: co_return Match{true};
        case Result::temperror: co_return error(Result::temperror, included.problem);
        case Result::permerror: co_return error(Result::permerror, included.problem);
        case Result::none: co_return error(Result::permerror, fmt::format("include:{}: no SPF record there", *name));
        default: co_return Match{false};
      }
    }
    case Kind::a: {
      const Match match = co_await matches_address(*name, mechanism.cidr4, mechanism.cidr6);
      co_return match;
    }
    case Kind::mx: {
      const Match match = co_await matches_mx(*name, mechanism.cidr4, mechanism.cidr6);
      co_return match;
    }
    case Kind::ptr: {
      const std::string wanted = sdk::lower_ascii(*name);
      const std::vector<std::string> names = co_await validated_names();
      co_return Match{std::any_of(names.begin(), names.end(), [&](const std::string& candidate) {
        return candidate == wanted || (candidate.size() > wanted.size() && candidate.ends_with("." + wanted));
      })};
    }
    case Kind::exists: {
      const DnsAnswer answer = co_await dns_.lookup(*name, DnsType::a);
      if (answer.status == DnsAnswer::Status::failed) co_return error(Result::temperror, answer.error);
      if (!note_void(answer)) co_return error(Result::permerror, "more than 2 lookups found nothing");
      co_return Match{!answer.records.empty()};
    }
    default: co_return Match{false};
  }
}

sdk::Task<Match> Evaluation::matches_address(const std::string& target, int cidr4, int cidr6) {
  const DnsAnswer answer = co_await dns_.lookup(target, ip_.v6 ? DnsType::aaaa : DnsType::a);
  if (answer.status == DnsAnswer::Status::failed) co_return error(Result::temperror, answer.error);
  if (!note_void(answer)) co_return error(Result::permerror, "more than 2 lookups found nothing");
  for (const DnsAnswer::Record& record : answer.records) {
    const std::optional<inet::Address> address = inet::Address::parse(record.value);
    if (address && ip_.in_network(*address, ip_.v6 ? cidr6 : cidr4)) co_return Match{true};
  }
  co_return Match{false};
}

sdk::Task<Match> Evaluation::matches_mx(const std::string& target, int cidr4, int cidr6) {
  const DnsAnswer answer = co_await dns_.lookup(target, DnsType::mx);
  if (answer.status == DnsAnswer::Status::failed) co_return error(Result::temperror, answer.error);
  if (!note_void(answer)) co_return error(Result::permerror, "more than 2 lookups found nothing");
  if (answer.records.size() > kMaxNames) co_return error(Result::permerror, target + " has more than 10 MX records");
  for (const DnsAnswer::Record& exchange : answer.records) {
    if (exchange.value.empty()) continue;  // a null MX (RFC 7505) names no host
    const Match match = co_await matches_address(exchange.value, cidr4, cidr6);
    if (match.matched || match.error == Result::temperror) co_return match;
  }
  co_return Match{false};
}

sdk::Task<std::optional<std::string>> Evaluation::target(const std::string& spec, const std::string& domain) {
  if (spec.empty()) co_return domain;
  MacroValues values = values_;
  values.domain = domain;
  if (uses_validated_name(spec)) values.validated = co_await validated_name(domain);
  co_return expand_domain(spec, values);
}

sdk::Task<std::string> Evaluation::explain(const Record& record, const std::string& domain) {
  MacroValues values = values_;
  values.domain = domain;
  const bool needs_name =
      uses_validated_name(default_explanation_) || (record.explanation && uses_validated_name(*record.explanation));
  if (needs_name) values.validated = co_await validated_name(domain);
  std::string fallback = expand(default_explanation_, values, true).value_or(default_explanation_);
  if (!record.explanation) co_return fallback;
  const std::optional<std::string> name = expand_domain(*record.explanation, values);
  if (!name || !checkable_domain(*name)) co_return fallback;
  const DnsAnswer answer = co_await dns_.lookup(*name, DnsType::txt);
  if (answer.status != DnsAnswer::Status::ok || answer.records.size() != 1) co_return fallback;
  const std::string& text = answer.records[0].value;
  if (uses_validated_name(text)) values.validated = co_await validated_name(domain);
  co_return expand(text, values, true).value_or(fallback);
}

sdk::Task<std::vector<std::string>> Evaluation::validated_names() {
  if (validated_) co_return *validated_;
  std::vector<std::string> names;
  const DnsAnswer pointers = co_await dns_.lookup(ip_.reverse_name(), DnsType::ptr);
  const std::size_t count = std::min(pointers.records.size(), kMaxNames);
  for (std::size_t i = 0; i < count; ++i) {
    const std::string name = sdk::lower_ascii(pointers.records[i].value);
    const DnsAnswer addresses = co_await dns_.lookup(name, ip_.v6 ? DnsType::aaaa : DnsType::a);
    for (const DnsAnswer::Record& record : addresses.records) {
      const std::optional<inet::Address> address = inet::Address::parse(record.value);
      if (address && address->v6 == ip_.v6 && address->bytes == ip_.bytes) {
        names.push_back(name);
        break;
      }
    }
  }
  validated_ = names;
  co_return names;
}

sdk::Task<std::string> Evaluation::validated_name(const std::string& domain) {
  const std::vector<std::string> names = co_await validated_names();
  const std::string wanted = sdk::lower_ascii(domain);
  for (const std::string& name : names) {
    if (name == wanted || name.ends_with("." + wanted)) co_return name;
  }
  co_return names.empty() ? std::string() : names.front();
}

}  // namespace

std::string_view result_name(Result result) {
  switch (result) {
    case Result::none: return "none";
    case Result::neutral: return "neutral";
    case Result::pass: return "pass";
    case Result::fail: return "fail";
    case Result::softfail: return "softfail";
    case Result::temperror: return "temperror";
    case Result::permerror: return "permerror";
  }
  return "none";
}

sdk::Task<Outcome> check(Dns& dns, Query query, std::string default_explanation) {
  const std::optional<inet::Address> ip = inet::Address::parse(query.ip);
  const std::string identity = query.sender.empty() ? "postmaster@" + query.helo : query.sender;
  if (!ip) {
    Outcome outcome;
    outcome.identity = identity;
    outcome.result = Result::permerror;
    outcome.problem = "the client address " + query.ip + " is not an IP address";
    co_return outcome;
  }
  Evaluation evaluation(dns, query, *ip, std::move(default_explanation));
  evaluation.set_sender(identity);
  Outcome outcome = co_await evaluation.check_host(evaluation.values().sender_domain);
  outcome.identity = evaluation.values().sender;
  outcome.domain = evaluation.values().sender_domain;
  co_return outcome;
}

}  // namespace tern::spf
