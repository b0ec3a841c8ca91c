// One SMTP session (RFC 5321) from greeting to QUIT: a table of command handlers over a connection.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "smtp_settings.hpp"
#include "tern/sdk/protocol.hpp"

namespace tern::smtp {

class SmtpSession {
 public:
  SmtpSession(sdk::Connection& connection, sdk::ServerContext& server, const sdk::ListenerInfo& listener,
              sdk::ClientInfo client, const SmtpSettings& settings, Role role);

  sdk::Task<void> run();

 private:
  using Handler = sdk::Task<void> (SmtpSession::*)(std::string_view argument);
  struct Command {
    const char* verb;
    Handler handler;
  };
  static const Command kCommands[];

  sdk::Task<void> on_ehlo(std::string_view argument);
  sdk::Task<void> on_helo(std::string_view argument);
  sdk::Task<void> on_starttls(std::string_view argument);
  sdk::Task<void> on_auth(std::string_view argument);
  sdk::Task<void> on_mail(std::string_view argument);
  sdk::Task<void> on_rcpt(std::string_view argument);
  sdk::Task<void> on_data(std::string_view argument);
  sdk::Task<void> on_rset(std::string_view argument);
  sdk::Task<void> on_noop(std::string_view argument);
  sdk::Task<void> on_vrfy(std::string_view argument);
  sdk::Task<void> on_help(std::string_view argument);
  sdk::Task<void> on_quit(std::string_view argument);

  sdk::Task<void> greet(std::string_view argument, bool extended);
  sdk::Task<void> reply(int code, std::string_view enhanced, std::string_view text);
  sdk::Task<void> reply_verdict(const sdk::Verdict& verdict);
  // Counts a client error; after too many, says 421 and ends the session.
  sdk::Task<void> error(int code, std::string_view enhanced, std::string_view text);
  // Reads the client's answer in a SASL exchange; nullopt when it cancelled or the connection failed.
  sdk::Task<std::optional<std::string>> sasl_answer(std::string_view challenge);
  sdk::Task<bool> read_data(std::string& message, std::string& problem_code);
  sdk::Task<void> store_message(std::string message);
  std::string received_header() const;
  bool auth_offered() const;
  void reset_transaction();

  sdk::Connection& connection_;
  sdk::ServerContext& server_;
  const sdk::ListenerInfo& listener_;
  sdk::ClientInfo client_;
  const SmtpSettings& settings_;
  Role role_;
  bool extended_ = false;
  bool closing_ = false;
  int errors_ = 0;
  int transactions_ = 0;
  std::optional<sdk::Envelope> envelope_;
  std::vector<std::string> local_users_;  // users the accepted recipients resolve to, each once
  sdk::Verdict data_decision_;            // a discard or quarantine decided at `data`
};

}  // namespace tern::smtp
