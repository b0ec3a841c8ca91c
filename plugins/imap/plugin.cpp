// Entry point of the imap plugin: the "imap" protocol.
#include "tern/sdk/plugin.hpp"
#include "imap_session.hpp"

namespace {

class ImapProtocol final : public tern::sdk::Protocol {
 public:
  // 64 MiB of parsed ENVELOPEs and BODYSTRUCTUREs, shared by every session of this generation.
  ImapProtocol() : structures_(64 * 1024 * 1024) {}

  std::string name() const override { return "imap"; }
  std::string busy_reply() const override { return "* BYE [UNAVAILABLE] Too many connections, try again later\r\n"; }

  tern::sdk::Task<void> serve(tern::sdk::Connection& connection, tern::sdk::ServerContext& server,
                              const tern::sdk::ListenerInfo& listener, tern::sdk::ClientInfo client) const override {
    tern::imap::ImapSession session(connection, server, listener, std::move(client), structures_, lists_, recent_);
    co_await session.run();
  }

 private:
  mutable tern::imap::StructureCache structures_;
  mutable tern::imap::MailboxLists lists_;
  mutable tern::imap::RecentClaims recent_;
};

}  // namespace

TERN_PLUGIN("imap", "0.1.0", "protocol:imap") {
  registrar.add_protocol(std::make_shared<ImapProtocol>());
}
