// One POP3 session (RFC 1939, CAPA from RFC 2449, STLS from RFC 2595): authorization, then a transaction on
// a snapshot of the INBOX; deletions happen only at QUIT.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "tern/sdk/protocol.hpp"

namespace tern::pop3 {

class Pop3Session {
 public:
  Pop3Session(sdk::Connection& connection, sdk::ServerContext& server, const sdk::ListenerInfo& listener,
              sdk::ClientInfo client);

  sdk::Task<void> run();

 private:
  using Handler = sdk::Task<void> (Pop3Session::*)(std::string_view argument);
  struct Command {
    const char* verb;
    bool after_login;  // valid in the TRANSACTION state, else in AUTHORIZATION
    Handler handler;
  };
  static const Command kCommands[];

  sdk::Task<void> on_capa(std::string_view argument);
  sdk::Task<void> on_stls(std::string_view argument);
  sdk::Task<void> on_user(std::string_view argument);
  sdk::Task<void> on_pass(std::string_view argument);
  sdk::Task<void> on_quit(std::string_view argument);
  sdk::Task<void> on_stat(std::string_view argument);
  sdk::Task<void> on_list(std::string_view argument);
  sdk::Task<void> on_uidl(std::string_view argument);
  sdk::Task<void> on_retr(std::string_view argument);
  sdk::Task<void> on_top(std::string_view argument);
  sdk::Task<void> on_dele(std::string_view argument);
  sdk::Task<void> on_rset(std::string_view argument);
  sdk::Task<void> on_noop(std::string_view argument);

  sdk::Task<void> send(std::string_view text);
  sdk::Task<void> ok(std::string_view text);
  sdk::Task<void> err(std::string_view text);
  // The message a "msg" argument names, or nullptr (and an -ERR sent) when it is bad or deleted.
  sdk::Task<const sdk::MessageEntry*> message_argument(std::string_view argument);
  sdk::Task<void> send_message(const sdk::MessageEntry& entry, std::optional<std::size_t> body_lines);
  bool login_allowed() const { return connection_.tls_active() || listener_.allow_plaintext_auth; }

  sdk::Connection& connection_;
  sdk::ServerContext& server_;
  const sdk::ListenerInfo& listener_;
  sdk::ClientInfo client_;
  bool closing_ = false;
  bool logged_in_ = false;
  std::string pending_user_;
  std::vector<sdk::MessageEntry> messages_;
  std::vector<bool> deleted_;
};

}  // namespace tern::pop3
