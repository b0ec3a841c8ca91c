// RFC 5322 address lists (section 3.4, with the obsolete forms of section 4.4), read leniently: what IMAP's
// ENVELOPE shows of From, To and Cc, what SORT compares, and whom a collected message names.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tern::mime {

// One address of a list, in the four parts IMAP's ENVELOPE gives it (RFC 3501 section 7.4.2). A group is an
// entry with only `mailbox` (the group's name), then its members, then an entry with nothing: the group ends.
struct Address {
  std::optional<std::string> name;     // the display name, quoted strings undone: "Doe, John"
  std::optional<std::string> route;    // an obsolete source route: "@relay.example"
  std::optional<std::string> mailbox;  // the local part, as written
  std::optional<std::string> host;     // the domain, as written; "" when the address has none
};

// The addresses of an address-list field value, folded or not; comments are dropped and a piece that is no
// address is skipped.
std::vector<Address> parse_addresses(std::string_view value);

// The addresses with a domain, as "local@domain" lower-cased, groups taken apart: whom a field names.
std::vector<std::string> address_specs(std::string_view value);

// The local part of the first address with a domain (IMAP SORT's FROM, TO and CC); "" when there is none.
std::string first_mailbox(std::string_view value);

}  // namespace tern::mime
