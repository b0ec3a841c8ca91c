// A store in memory for the intake step's tests: a directory of a few domains, users and aliases, quotas, state,
// and receive() that records what it was given (or fails as told). What the step does not use throws.
#pragma once

#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "tern/sdk/address.hpp"
#include "tern/sdk/store.hpp"

namespace tern::testing {

class FakeStore final : public sdk::MailStore, sdk::Directory, sdk::Mailboxes, sdk::Queue, sdk::State {
 public:
  std::set<std::string> domains{"example.test"};
  std::set<std::string> users{"alice@example.test", "bob@example.test", "postmaster@example.test"};
  std::map<std::string, std::vector<std::string>> aliases;  // source to targets
  std::map<std::string, sdk::QuotaInfo> quotas;
  std::map<std::pair<std::string, std::string>, std::string> state_entries;
  // What receive() was given, in order.
  struct Received {
    std::string message;
    sdk::Intake intake;
  };
  std::vector<Received> received;
  std::exception_ptr failure;  // thrown by the next receive(), then cleared

  sdk::Directory& directory() override { return *this; }
  sdk::Mailboxes& mailboxes() override { return *this; }
  sdk::Queue& queue() override { return *this; }
  sdk::State& state() override { return *this; }
  void receive(std::string_view message, const sdk::Intake& intake) override {
    if (failure) std::rethrow_exception(std::exchange(failure, nullptr));
    received.push_back({std::string(message), intake});
  }

  bool is_local_domain(std::string_view domain) override { return domains.contains(sdk::lower_ascii(domain)); }
  std::vector<std::string> list_domains() override { return {domains.begin(), domains.end()}; }
  sdk::RecipientExpansion expand_recipient(std::string_view address) override {
    sdk::RecipientExpansion expansion;
    const std::string name = sdk::lower_ascii(address);
    const auto alias = aliases.find(name);
    if (alias == aliases.end()) {
      if (users.contains(name)) expansion.local_users.push_back(name);
      return expansion;
    }
    expansion.aliases.push_back(name);
    for (const std::string& target : alias->second) {
      if (users.contains(target)) {
        expansion.local_users.push_back(target);
      } else if (!is_local_domain(sdk::domain_of(target))) {
        expansion.forwards.push_back(target);
      }
    }
    return expansion;
  }
  sdk::QuotaInfo quota(std::string_view address) override {
    const auto found = quotas.find(std::string(address));
    return found == quotas.end() ? sdk::QuotaInfo{} : found->second;
  }
  std::optional<std::string> get(std::string_view space, std::string_view key) override {
    const auto found = state_entries.find({std::string(space), std::string(key)});
    if (found == state_entries.end()) return std::nullopt;
    return found->second;
  }
  void put(const std::vector<sdk::StateChange>& changes) override {
    for (const sdk::StateChange& change : changes) state_entries[{change.space, change.key}] = change.value;
  }

  // Not used by the intake step.
  void add_domain(std::string_view) override { unused(); }
  void remove_domain(std::string_view) override { unused(); }
  void add_user(std::string_view, std::string_view) override { unused(); }
  void set_password_hash(std::string_view, std::string_view) override { unused(); }
  void remove_user(std::string_view) override { unused(); }
  std::vector<std::string> list_users(std::string_view) override { unused(); }
  std::optional<std::string> password_hash(std::string_view) override { unused(); }
  void add_alias(std::string_view, std::string_view) override { unused(); }
  void remove_alias(std::string_view, std::string_view) override { unused(); }
  std::vector<sdk::AliasEntry> list_aliases(std::string_view) override { unused(); }
  void set_quota(std::string_view, std::uint64_t, std::uint64_t) override { unused(); }
  std::vector<sdk::MessageEntry> list_messages(std::string_view, std::string_view) override { unused(); }
  std::optional<sdk::MailboxState> mailbox_state(std::string_view, std::string_view) override { unused(); }
  std::vector<std::uint32_t> expunged_since(std::string_view, std::string_view, std::uint64_t) override { unused(); }
  std::string read_message(std::string_view, std::int64_t) override { unused(); }
  void remove_messages(std::string_view, const std::vector<std::int64_t>&) override { unused(); }
  std::vector<sdk::MailboxInfo> list_mailboxes(std::string_view) override { unused(); }
  sdk::MessageEntry append_message(std::string_view, std::string_view, std::string_view, std::string_view,
                                   std::int64_t) override {
    unused();
  }
  std::pair<std::uint32_t, std::vector<std::pair<std::uint32_t, std::uint32_t>>> copy_messages(
      std::string_view, const std::vector<std::int64_t>&, std::string_view) override {
    unused();
  }
  void create_mailbox(std::string_view, std::string_view, std::string_view) override { unused(); }
  void delete_mailbox(std::string_view, std::string_view) override { unused(); }
  void rename_mailbox(std::string_view, std::string_view, std::string_view) override { unused(); }
  sdk::FlagResult change_flags(std::string_view, const std::vector<std::int64_t>&, sdk::FlagChange,
                               const std::vector<std::string>&, std::optional<std::uint64_t>) override {
    unused();
  }
  std::vector<sdk::QueueEntry> list() override { unused(); }
  std::optional<sdk::QueueEntry> entry(std::int64_t) override { unused(); }
  std::vector<sdk::QueueEntry> claim(std::int64_t, std::int64_t, std::size_t) override { unused(); }
  std::string read(std::int64_t) override { unused(); }
  void update(const std::vector<sdk::QueueEntry>&) override { unused(); }
  bool remove(std::int64_t) override { unused(); }
  bool hold(std::int64_t, bool) override { unused(); }
  std::size_t flush(std::string_view, std::int64_t) override { unused(); }
  std::vector<std::pair<std::string, std::string>> list(std::string_view) override { unused(); }
  void erase(std::string_view, std::string_view) override { unused(); }
  std::size_t prune(std::int64_t, std::size_t) override { unused(); }

 private:
  [[noreturn]] static void unused() { throw std::logic_error("not used by the intake step"); }
};

}  // namespace tern::testing
