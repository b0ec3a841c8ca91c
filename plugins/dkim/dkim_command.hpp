// `tern dkim keygen DOMAIN [--selector S] [--algorithm rsa|ed25519]` and `tern dkim show DOMAIN`: a domain's
// signing keys and the DNS records that publish them.
#pragma once

#include <utility>  // before Boost.Asio: Boost 1.74's awaitable.hpp needs it with g++ 12

#include "tern/sdk/command.hpp"

namespace tern::dkim {

class DkimCommand final : public sdk::Command {
 public:
  std::string name() const override { return "dkim"; }
  std::string summary() const override {
    return "keygen DOMAIN [--selector S] [--algorithm rsa|ed25519] | show DOMAIN: DKIM keys and their DNS records";
  }
  sdk::Task<int> run(sdk::ServiceContext& context, std::vector<std::string> arguments) const override;
};

}  // namespace tern::dkim
