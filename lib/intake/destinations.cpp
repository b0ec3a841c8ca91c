#include "destinations.hpp"

#include <algorithm>

#include "tern/sdk/address.hpp"

namespace tern::intake {

Resolution resolve(sdk::Directory& directory, std::string_view hostname, sdk::Recipient& recipient) {
  Resolution found;
  if (recipient.address == "postmaster") {
    std::vector<std::string> domains{sdk::lower_ascii(hostname)};
    for (std::string& domain : directory.list_domains()) domains.push_back(std::move(domain));
    for (const std::string& domain : domains) {
      found.users = directory.resolve_recipient("postmaster@" + domain);
      if (!found.users.empty()) {
        recipient.address = "postmaster@" + domain;
        break;
      }
    }
    found.local = true;
    return found;
  }
  found.local = directory.is_local_domain(sdk::domain_of(recipient.address));
  if (found.local) {
    found.expansion = directory.expand_recipient(recipient.address);
    found.users = found.expansion.local_users;
  }
  return found;
}

void Destinations::add(const sdk::Recipient& recipient, const Resolution& resolution) {
  const auto queued = [this](std::string_view address) {
    return std::any_of(remote.begin(), remote.end(),
                       [&](const sdk::Recipient& other) { return sdk::same_ascii(other.address, address); });
  };
  if (!resolution.local && !queued(recipient.address)) remote.push_back(recipient);
  const sdk::RecipientExpansion& expansion = resolution.expansion;
  for (const std::string& forward : expansion.forwards) {
    if (!queued(forward)) {
      remote.push_back(
          {forward, recipient.notify, recipient.orcpt.empty() ? "rfc822;" + recipient.address : recipient.orcpt});
    }
  }
  for (const std::string& alias : expansion.aliases) {
    if (!expansion.forwards.empty() && std::find(aliases.begin(), aliases.end(), alias) == aliases.end()) {
      aliases.push_back(alias);
    }
  }
  for (const std::string& user : resolution.users) {
    if (std::find(users.begin(), users.end(), user) == users.end()) users.push_back(user);
  }
}

}  // namespace tern::intake
