// What a hook at `route` sees: the queued message's envelope and the recipient being routed. The message itself
// is not read for routing; asking for it is an error that names the stage.
#pragma once

#include <stdexcept>
#include <string>

#include "tern/sdk/hook.hpp"
#include "tern/sdk/store.hpp"

namespace tern::outbound {

class RouteHookContext final : public sdk::HookContext {
 public:
  RouteHookContext(const sdk::QueueEntry& entry, std::string recipient) : recipient_(std::move(recipient)) {
    client_.session_id = "queue-" + std::to_string(entry.id);
    client_.protocol = "outbound";
    envelope_.sender = entry.sender;
    for (const sdk::QueueRecipient& queued : entry.recipients) {
      envelope_.recipients.push_back({queued.address, queued.notify, queued.orcpt});
    }
    envelope_.ret = entry.ret;
    envelope_.envid = entry.envid;
    envelope_.smtputf8 = entry.smtputf8;
  }

  sdk::Stage stage() const override { return sdk::Stage::route; }
  const sdk::ClientInfo& client() const override { return client_; }
  const sdk::Envelope* envelope() const override { return &envelope_; }
  std::string_view recipient() const override { return recipient_; }
  std::string_view message() const override { throw std::logic_error("the message is not read at route"); }
  void add_header(std::string_view, std::string_view) override {
    throw std::logic_error("headers cannot be added at route");
  }

 private:
  sdk::ClientInfo client_;
  sdk::Envelope envelope_;
  std::string recipient_;
};

}  // namespace tern::outbound
