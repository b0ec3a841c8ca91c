// A HookContext for stages outside a mail transaction (connect, login, disconnect): it knows the client only.
#pragma once

#include <stdexcept>
#include <string>

#include "tern/sdk/hook.hpp"

namespace tern::sdk {

class SessionHookContext final : public HookContext {
 public:
  SessionHookContext(Stage stage, const ClientInfo& client) : stage_(stage), client_(client) {}

  Stage stage() const override { return stage_; }
  const ClientInfo& client() const override { return client_; }
  const Envelope* envelope() const override { return nullptr; }
  std::string_view recipient() const override { unavailable("recipient()"); }
  std::string_view message() const override { unavailable("message()"); }
  void add_header(std::string_view, std::string_view) override { unavailable("add_header()"); }

 private:
  Stage stage_;
  const ClientInfo& client_;
};

}  // namespace tern::sdk
