// The collector: polls each account on its schedule and files what it finds through the intake step.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "account.hpp"

namespace tern::fetch {

class FetchService final : public sdk::Service {
 public:
  explicit FetchService(std::vector<Account> accounts) : accounts_(std::move(accounts)) {}

  std::string name() const override { return "fetch"; }
  sdk::Task<void> run(sdk::ServiceContext& context) const override;
  // `tern fetch run [ACCOUNT]`: polls the account, or every one, once.
  sdk::Task<int> run_once(sdk::ServiceContext& context, std::string target) const override;

 private:
  // One poll of one account; false when it failed (and was logged).
  sdk::Task<bool> poll(sdk::ServiceContext& context, const Account& account) const;
  sdk::Task<bool> poll_pop3(sdk::ServiceContext& context, const Account& account, sdk::Connection& connection) const;
  sdk::Task<bool> poll_imap(sdk::ServiceContext& context, const Account& account, sdk::Connection& connection) const;
  // Forgets the collected messages the server no longer has (or, unless `keep`, has been told to delete).
  sdk::Task<void> forget(sdk::ServiceContext& context, const Account& account,
                         const std::map<std::string, std::int64_t>& collected,
                         const std::set<std::string>& present) const;
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
  Destination destination(sdk::Directory& directory, const Account& account, std::string_view message) const;

  std::vector<Account> accounts_;
};

}  // namespace tern::fetch
