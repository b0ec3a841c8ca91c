// One POP3 session (RFC 1939, CAPA from RFC 2449, STLS from RFC 2595, AUTH from RFC 5034): authorization,
// then a transaction on a snapshot of the INBOX; deletions happen only at QUIT. pop3_session.cpp holds the
// session and the AUTHORIZATION state, pop3_maildrop.cpp the TRANSACTION state.
#pragma once

#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "maildrop_locks.hpp"

#include "tern/sdk/protocol.hpp"

namespace tern::pop3 {

class Pop3Session {
 public:
  Pop3Session(sdk::Connection& connection, sdk::ServerContext& server, const sdk::ListenerInfo& listener,
              sdk::ClientInfo client, MaildropLocks& locks);
  ~Pop3Session();
  Pop3Session(const Pop3Session&) = delete;
  Pop3Session& operator=(const Pop3Session&) = delete;

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
  sdk::Task<void> on_auth(std::string_view argument);
  // Authenticates, takes the maildrop's lock and lists it: the step into the TRANSACTION state.
  sdk::Task<void> log_in(std::string_view user, std::string_view password);
  // One line a client sends in an AUTH exchange, after a "+ challenge" line; nullopt when it cancelled
  // ("*") or went away (then the session closes).
  sdk::Task<std::optional<std::string>> sasl_response(std::string_view challenge);
  sdk::Task<void> on_quit(std::string_view argument);
  sdk::Task<void> on_stat(std::string_view argument);
  sdk::Task<void> on_list(std::string_view argument);
  sdk::Task<void> on_uidl(std::string_view argument);
  sdk::Task<void> on_retr(std::string_view argument);
  sdk::Task<void> on_top(std::string_view argument);
  sdk::Task<void> on_dele(std::string_view argument);
  sdk::Task<void> on_rset(std::string_view argument);
  sdk::Task<void> on_noop(std::string_view argument);

  // Replies gather in pending_ and go out when the client has sent nothing more (PIPELINING, RFC 2449).
  void send(std::string_view text) { pending_ += text; }
  void ok(std::string_view text);
  void err(std::string_view text);
  sdk::Task<void> flush();
  // The message a "msg" argument names, or nullptr (and an -ERR sent) when it is bad or deleted.
  const sdk::MessageEntry* message_argument(std::string_view argument);
  sdk::Task<void> send_message(const sdk::MessageEntry& entry, std::optional<std::size_t> body_lines);
  bool login_allowed() const { return connection_.tls_active() || listener_.allow_plaintext_auth; }

  sdk::Connection& connection_;
  sdk::ServerContext& server_;
  const sdk::ListenerInfo& listener_;
  sdk::ClientInfo client_;
  MaildropLocks& locks_;
  bool closing_ = false;
  std::string pending_;
  bool logged_in_ = false;
  std::string pending_user_;
  std::vector<sdk::MessageEntry> messages_;
  std::vector<bool> deleted_;
  // Messages read ahead of the RETR or TOP that named the first of them, by index: clients take them in
  // order, and one trip to the store for a few costs little more than one.
  std::unordered_map<std::size_t, std::string> ahead_;
};

}  // namespace tern::pop3
