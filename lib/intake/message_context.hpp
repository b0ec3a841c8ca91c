// What `message` and `queued` hooks see of a message the intake step files, and what `message` hooks change: header
// fields added or removed, and the envelope (a new sender, recipients added or removed).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "tern/sdk/hook.hpp"

namespace tern::intake {

class MessageContext final : public sdk::HookContext {
 public:
  // `stage` is message or queued; `message` must outlive the context.
  MessageContext(sdk::Stage stage, const sdk::ClientInfo& client, const sdk::Envelope& envelope,
                 std::string_view message)
      : stage_(stage), client_(client), envelope_(envelope), message_(message) {}

  sdk::Stage stage() const override { return stage_; }
  const sdk::ClientInfo& client() const override { return client_; }
  const sdk::Envelope* envelope() const override { return &envelope_; }
  std::string_view recipient() const override { unavailable("recipient()"); }
  std::string_view message() const override { return edited_ ? std::string_view(*edited_) : message_; }
  void add_header(std::string_view name, std::string_view value) override;
  std::size_t remove_header(std::string_view name) override;
  void set_sender(std::string_view address) override;
  void add_recipient(std::string_view address) override;
  bool remove_recipient(std::string_view address) override;

  // The header fields hooks added, in order, each "Name: value\r\n".
  const std::string& added_headers() const { return added_; }
  // What `message` hooks changed in the envelope.
  const std::optional<std::string>& new_sender() const { return sender_; }
  const std::vector<std::string>& added_recipients() const { return added_recipients_; }
  const std::vector<std::string>& removed_recipients() const { return removed_recipients_; }

 private:
  // The changes are the `message` stage's alone: at `queued` the message is filed already.
  void only_at_message(const char* what) const {
    if (stage_ != sdk::Stage::message) unavailable(what);
  }

  sdk::Stage stage_;
  const sdk::ClientInfo& client_;
  const sdk::Envelope& envelope_;
  std::string_view message_;
  std::optional<std::string> edited_;  // the message once a hook removed a field from it
  std::string added_;
  std::optional<std::string> sender_;
  std::vector<std::string> added_recipients_;
  std::vector<std::string> removed_recipients_;
};

}  // namespace tern::intake
