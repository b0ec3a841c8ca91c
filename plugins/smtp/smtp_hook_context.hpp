// The smtp session's view for hooks (sdk::HookContext) up to `queued`: what its stage knows, and what `message`
// hooks change. `deliver` has its own (delivery/deliver_stage.hpp).
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tern/sdk/hook.hpp"

namespace tern::smtp {

class SmtpHookContext final : public sdk::HookContext {
 public:
  SmtpHookContext(sdk::Stage stage, const sdk::ClientInfo& client, const sdk::Envelope* envelope)
      : stage_(stage), client_(client), envelope_(envelope) {}

  sdk::Stage stage() const override { return stage_; }
  const sdk::ClientInfo& client() const override { return client_; }
  const sdk::Envelope* envelope() const override { return envelope_; }
  std::string_view recipient() const override;
  std::string_view message() const override;
  void add_header(std::string_view name, std::string_view value) override;
  std::size_t remove_header(std::string_view name) override;
  void set_sender(std::string_view address) override;
  void add_recipient(std::string_view address) override;
  bool remove_recipient(std::string_view address) override;

  void set_recipient(std::string_view recipient) { recipient_ = recipient; }
  void set_message(std::string_view message) { message_ = message; }
  // The header fields hooks added, in order, each "Name: value\r\n".
  const std::string& added_headers() const { return added_; }
  // What `message` hooks changed in the envelope.
  const std::optional<std::string>& new_sender() const { return sender_; }
  const std::vector<std::string>& added_recipients() const { return added_recipients_; }
  const std::vector<std::string>& removed_recipients() const { return removed_recipients_; }

 private:
  sdk::Stage stage_;
  const sdk::ClientInfo& client_;
  const sdk::Envelope* envelope_;
  std::string_view recipient_;
  std::string_view message_;
  std::optional<std::string> edited_;  // the message once a hook removed a field from it
  std::string added_;
  std::optional<std::string> sender_;
  std::vector<std::string> added_recipients_;
  std::vector<std::string> removed_recipients_;
};

}  // namespace tern::smtp
