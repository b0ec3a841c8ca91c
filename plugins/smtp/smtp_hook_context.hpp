// What hooks see of an SMTP transaction before its message arrives: `mail`, `rcpt` and `data`. The message's own
// stages belong to the intake step (lib/intake: message_context.hpp).
#pragma once

#include "tern/sdk/hook.hpp"

namespace tern::smtp {

class SmtpHookContext final : public sdk::HookContext {
 public:
  SmtpHookContext(sdk::Stage stage, const sdk::ClientInfo& client, const sdk::Envelope* envelope)
      : stage_(stage), client_(client), envelope_(envelope) {}

  sdk::Stage stage() const override { return stage_; }
  const sdk::ClientInfo& client() const override { return client_; }
  const sdk::Envelope* envelope() const override { return envelope_; }
  // At `rcpt` only: the recipient being decided on.
  std::string_view recipient() const override {
    if (stage_ != sdk::Stage::rcpt) unavailable("recipient()");
    return recipient_;
  }
  std::string_view message() const override { unavailable("message()"); }
  void add_header(std::string_view, std::string_view) override { unavailable("add_header()"); }

  void set_recipient(std::string_view recipient) { recipient_ = recipient; }

 private:
  sdk::Stage stage_;
  const sdk::ClientInfo& client_;
  const sdk::Envelope* envelope_;
  std::string_view recipient_;
};

}  // namespace tern::smtp
