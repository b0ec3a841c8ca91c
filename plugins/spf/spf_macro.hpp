// SPF macros (RFC 7208 section 7): checking a macro-string's syntax and expanding it.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace tern::spf {

// What the macro letters stand for in one evaluation.
struct MacroValues {
  std::string sender;         // s: the sender, "postmaster@" put in front of a domain without local-part
  std::string local_part;     // l
  std::string sender_domain;  // o
  std::string domain;         // d: the domain whose record is being evaluated
  std::string ip;             // i: dotted quad, or the 32 nibbles of an IPv6 address separated by dots
  std::string ip_text;        // c: the address as people write it
  std::string validated;      // p: the client's validated name, "unknown" when none
  bool ipv6 = false;          // v: "ip6", else "in-addr"
  std::string helo;           // h
  std::string receiver;       // r: this server's name, "unknown" when not given
  long long timestamp = 0;    // t
};

// Whether `text` is a valid macro-string; `explanation` allows the letters c, r and t, which only an
// explanation may use, and spaces.
bool valid_macro_string(std::string_view text, bool explanation);
// Whether `text` is a valid domain-spec: a macro-string that ends in a macro or in a top label that is not all
// digits (section 7.1).
bool valid_domain_spec(std::string_view text);
// Whether `text` uses the p macro, which costs DNS lookups: the caller finds the validated name first.
bool uses_validated_name(std::string_view text);
// `text` expanded; nullopt when it is not a valid macro-string. A domain-spec's expansion longer than 253
// characters loses labels on the left until it fits (section 7.3).
std::optional<std::string> expand(std::string_view text, const MacroValues& values, bool explanation);
std::optional<std::string> expand_domain(std::string_view text, const MacroValues& values);

}  // namespace tern::spf
