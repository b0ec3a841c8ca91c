// An SPF record (RFC 7208 sections 4.5 to 6) read into its terms, with every syntax rule checked up front: a
// record with any error anywhere is a permerror before anything is evaluated (section 4.6).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ip_address.hpp"

namespace tern::spf {

struct Mechanism {
  enum class Kind { all, include, a, mx, ptr, ip4, ip6, exists };
  char qualifier = '+';  // + pass, - fail, ~ softfail, ? neutral
  Kind kind = Kind::all;
  std::string domain_spec;  // include, a, mx, ptr, exists: the target, "" for the current domain
  int cidr4 = 32;           // a, mx, ip4: the prefix length for IPv4
  int cidr6 = 128;          // a, mx, ip6: for IPv6
  inet::Address network;    // ip4, ip6
  std::string text;         // as written, for logs and Received-SPF
};

struct Record {
  std::vector<Mechanism> mechanisms;
  std::optional<std::string> redirect;     // domain-spec
  std::optional<std::string> explanation;  // exp=: domain-spec
};

// Whether a TXT record is an SPF record: "v=spf1" alone or followed by a space, in any case.
bool is_spf_record(std::string_view text);
// The record read; nullopt with `problem` set when it breaks any rule.
std::optional<Record> parse_record(std::string_view text, std::string& problem);

}  // namespace tern::spf
