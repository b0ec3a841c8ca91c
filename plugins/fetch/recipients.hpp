// Multidrop: who a message collected from a domain-wide mailbox is for, read from its header (the envelope
// recipient is gone by the time mail sits in such a mailbox). Pure functions of the text; resolving the
// addresses to local users is the caller's.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace tern::fetch {

// The address of the `for` clause of the topmost Received field ("... for <bob@example.org>; date"), or "".
std::string received_for(std::string_view message);

// The candidate recipients, source by source in the order given, each list in the order found: for
// "Received", the topmost Received field's `for` address; for any other name, the addresses of every field
// of that name. The caller tries them in turn and takes the first source that yields a local user.
std::vector<std::vector<std::string>> candidate_recipients(std::string_view message,
                                                           const std::vector<std::string>& sources);

}  // namespace tern::fetch
