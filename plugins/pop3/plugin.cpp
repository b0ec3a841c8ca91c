// Entry point of the pop3 plugin: the "pop3" protocol.
#include "tern/sdk/plugin.hpp"
#include "pop3_session.hpp"

namespace {

// One set of maildrop locks for the process, not per generation: a session that began before a reload still
// holds its maildrop against sessions that begin after it (the plugin stays loaded, see the loader).
tern::pop3::MaildropLocks& maildrop_locks() {
  static tern::pop3::MaildropLocks locks;
  return locks;
}

class Pop3Protocol final : public tern::sdk::Protocol {
 public:
  std::string name() const override { return "pop3"; }
  std::string busy_reply() const override { return "-ERR [SYS/TEMP] Too many connections, try again later\r\n"; }

  tern::sdk::Task<void> serve(tern::sdk::Connection& connection, tern::sdk::ServerContext& server,
                              const tern::sdk::ListenerInfo& listener, tern::sdk::ClientInfo client) const override {
    tern::pop3::Pop3Session session(connection, server, listener, std::move(client), maildrop_locks());
    co_await session.run();
  }
};

}  // namespace

TERN_PLUGIN("pop3", "0.1.0", "protocol:pop3") {
  registrar.add_protocol(std::make_shared<Pop3Protocol>());
}
