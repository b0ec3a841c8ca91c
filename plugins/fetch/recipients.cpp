#include "recipients.hpp"

#include <algorithm>

#include "addresses.hpp"
#include "tern/sdk/header.hpp"

namespace tern::fetch {
std::string received_for(std::string_view message) {
  const std::vector<std::string> received = sdk::header_values(message, "Received");
  if (received.empty()) return "";
  // Folding leaves tabs where a line ended ("...\r\n\tfor <x>;"): as spaces, "for" is a word like any other.
  std::string lowered = sdk::lower_ascii(received.front());
  std::replace(lowered.begin(), lowered.end(), '\t', ' ');
  std::size_t at = 0;
  while ((at = lowered.find("for", at)) != std::string::npos) {
    const bool word = (at == 0 || lowered[at - 1] == ' ') && at + 3 < lowered.size() && lowered[at + 3] == ' ';
    at += 3;
    if (!word) continue;
    std::string_view rest = std::string_view(lowered).substr(at);
    const std::size_t end = rest.find_first_of(";");
    std::vector<std::string> addresses = mime::address_specs(rest.substr(0, end));
    if (!addresses.empty()) return addresses.front();
  }
  return "";
}

std::vector<std::vector<std::string>> candidate_recipients(std::string_view message,
                                                           const std::vector<std::string>& sources) {
  std::vector<std::vector<std::string>> candidates;
  for (const std::string& source : sources) {
    std::vector<std::string> addresses;
    if (sdk::lower_ascii(source) == "received") {
      std::string address = received_for(message);
      if (!address.empty()) addresses.push_back(std::move(address));
    } else {
      for (const std::string& value : sdk::header_values(message, source)) {
        for (std::string& address : mime::address_specs(value)) addresses.push_back(std::move(address));
      }
    }
    candidates.push_back(std::move(addresses));
  }
  return candidates;
}

}  // namespace tern::fetch
