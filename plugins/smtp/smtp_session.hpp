// One SMTP session (RFC 5321) from greeting to QUIT: a table of command handlers over a connection.
// smtp_session.cpp holds the session and connection-level commands, smtp_auth.cpp AUTH, and
// smtp_transaction.cpp the mail transaction (MAIL, RCPT, DATA, BDAT) up to the intake step.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "destinations.hpp"
#include "smtp_hook_context.hpp"
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

  // smtp_session.cpp
  sdk::Task<void> on_ehlo(std::string_view argument);
  sdk::Task<void> on_helo(std::string_view argument);
  sdk::Task<void> on_starttls(std::string_view argument);
  sdk::Task<void> on_rset(std::string_view argument);
  sdk::Task<void> on_noop(std::string_view argument);
  sdk::Task<void> on_vrfy(std::string_view argument);
  sdk::Task<void> on_expn(std::string_view argument);
  sdk::Task<void> on_help(std::string_view argument);
  sdk::Task<void> on_quit(std::string_view argument);
  sdk::Task<void> greet(std::string_view argument, bool extended);
  // smtp_auth.cpp
  sdk::Task<void> on_auth(std::string_view argument);
  // Reads the client's answer in a SASL exchange; nullopt when it cancelled or the connection failed.
  sdk::Task<std::optional<std::string>> sasl_answer(std::string_view challenge);
  bool auth_offered() const;
  // smtp_transaction.cpp
  sdk::Task<void> on_mail(std::string_view argument);
  sdk::Task<void> on_rcpt(std::string_view argument);
  // RCPT's address and DSN parameters; nullopt once the client has been answered.
  std::optional<sdk::Recipient> parse_recipient(std::string_view argument);
  sdk::Task<void> on_data(std::string_view argument);
  sdk::Task<void> on_bdat(std::string_view argument);
  // Submission: whether the authenticated user may send as `sender` (their address or an alias of theirs).
  sdk::Task<bool> sender_allowed(const std::string& sender);
  // Runs the `data` hooks; false (and the client answered) when they refuse the transaction.
  sdk::Task<bool> start_message();
  sdk::Task<bool> read_data(std::string& message, std::string& problem);
  sdk::Task<bool> read_chunk(std::size_t size, bool keep);
  sdk::Task<void> store_message(std::string message);

  std::string received_header() const;
  std::string submission_headers(std::string_view message) const;
  void reset_transaction();

  // Replies are gathered and written when the client has no more pipelined input (RFC 2920), or by flush().
  void reply(int code, std::string_view enhanced, std::string_view text);
  void reply_verdict(const sdk::Verdict& verdict);
  // Counts a client error; after too many, says 421 and ends the session.
  void error(int code, std::string_view enhanced, std::string_view text);
  sdk::Task<void> flush();

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
  std::string pending_;  // replies not yet written
  std::optional<sdk::Envelope> envelope_;
  intake::Destinations destinations_;  // where the accepted recipients' mail goes
  std::size_t declared_size_ = 0;      // MAIL's SIZE parameter, 0 when absent: checked against quotas
  sdk::Verdict data_decision_;         // a discard or quarantine decided at `data`
  // BDAT (RFC 3030): the chunks so far, and whether the transaction already failed (its chunks are read and
  // dropped until the last one).
  bool chunking_ = false;
  bool chunks_refused_ = false;
  std::size_t chunked_size_ = 0;
  std::string chunks_;
};

}  // namespace tern::smtp
