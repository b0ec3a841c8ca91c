// The `deliver` stage, run by the intake step once for each local user a message is filed for.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tern/sdk/hook.hpp"
#include "tern/sdk/protocol.hpp"
#include "tern/sdk/store.hpp"

namespace tern::intake {

// What one user's `deliver` hooks see, and what they ask for.
class DeliverContext final : public sdk::HookContext {
 public:
  DeliverContext(const sdk::ClientInfo& client, const sdk::Envelope& envelope, std::string_view user,
                 std::string_view message)
      : client_(client), envelope_(envelope), user_(user), message_(message) {}

  sdk::Stage stage() const override { return sdk::Stage::deliver; }
  const sdk::ClientInfo& client() const override { return client_; }
  const sdk::Envelope* envelope() const override { return &envelope_; }
  std::string_view recipient() const override { return user_; }
  std::string_view message() const override { return message_; }
  void add_header(std::string_view, std::string_view) override { unavailable("add_header()"); }
  void add_flag(std::string_view flag) override;
  void redirect(std::string_view address) override;

  // The copy's flags, space-separated, and the addresses it goes on to.
  const std::string& flags() const { return flags_; }
  const std::vector<std::string>& redirects() const { return redirects_; }

 private:
  const sdk::ClientInfo& client_;
  const sdk::Envelope& envelope_;
  std::string_view user_;
  std::string_view message_;
  std::string flags_;
  std::vector<std::string> redirects_;
};

// What the users' hooks decided for one message.
struct Decisions {
  std::optional<sdk::Verdict> refusal;  // a hook refused it (reject, defer, disconnect): nobody gets a copy
  std::vector<sdk::Filing> filings;     // the copies kept, each in its folder with its flags
  std::vector<std::pair<std::string, std::string>> redirects;  // (address, the user it is sent on for)
  // Delivered-To fields naming the users who redirected, for the top of the stored message: one stored copy
  // serves every filing, and a copy that comes back to such a user is then known and not sent on again.
  std::string redirected_by;
};

// Runs the `deliver` hooks for each of `users` on `message` (as it is stored, trace fields on top). A copy goes
// to `folder` unless a hook quarantines it elsewhere or discards it. A user's redirect is dropped, with a log
// line, when `passed` (the part of the message that may show this server's marks) has a Delivered-To naming
// them: the copy went round once already. `name` names the message in the log.
sdk::Task<Decisions> decide(sdk::ServerContext& server, const sdk::ClientInfo& client, const sdk::Envelope& envelope,
                            const std::vector<std::string>& users, std::string_view message, std::string_view passed,
                            std::string_view folder, std::string_view name);

// Adds the redirected copies to `intake`: a local address is filed in its INBOX at once (its own user's hooks do
// not run again), any other is queued for `intake.sender`. Reads the directory: call it off the loop, before
// MailStore::receive.
void add_redirects(sdk::Directory& directory, const Decisions& decisions, sdk::Intake& intake);

}  // namespace tern::intake
