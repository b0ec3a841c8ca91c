// The collector: polls each account on its schedule and files what it finds through the `message` stage.
#pragma once

#include <vector>

#include "account.hpp"

namespace tern::fetch {

class FetchService final : public sdk::Service {
 public:
  explicit FetchService(std::vector<Account> accounts) : accounts_(std::move(accounts)) {}

  std::string name() const override { return "fetch"; }
  sdk::Task<void> run(sdk::ServiceContext& context) const override;

 private:
  // One poll of one account; false when it failed (and was logged).
  sdk::Task<bool> poll(sdk::ServiceContext& context, const Account& account) const;
  // Files one collected message for the account's user, marking its UIDL seen in the same commit. False
  // when it could not be stored (the poll stops; the message stays on the server).
  sdk::Task<bool> file(sdk::ServiceContext& context, const Account& account, const std::string& uidl,
                       std::string message) const;

  // Where a collected message goes: its local users (each once) and the mailbox.
  struct Destination {
    std::vector<std::string> users;
    std::string mailbox;
  };
  // Blocking (store lookups): call it on the worker pool.
  Destination destination(sdk::MailStore& store, const Account& account, std::string_view message) const;

  std::vector<Account> accounts_;
};

}  // namespace tern::fetch
