#include "smtp_session.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "smtp_hook_context.hpp"
#include "smtp_syntax.hpp"
#include "tern/sdk/text.hpp"

namespace tern::smtp {
namespace {

constexpr std::size_t kCommandLineLimit = 512;  // RFC 5321 section 4.5.3.1.4, CRLF included

}  // namespace

const SmtpSession::Command SmtpSession::kCommands[] = {
    {"EHLO", &SmtpSession::on_ehlo}, {"HELO", &SmtpSession::on_helo}, {"STARTTLS", &SmtpSession::on_starttls},
    {"AUTH", &SmtpSession::on_auth}, {"MAIL", &SmtpSession::on_mail}, {"RCPT", &SmtpSession::on_rcpt},
    {"DATA", &SmtpSession::on_data}, {"BDAT", &SmtpSession::on_bdat}, {"RSET", &SmtpSession::on_rset},
    {"NOOP", &SmtpSession::on_noop}, {"VRFY", &SmtpSession::on_vrfy}, {"EXPN", &SmtpSession::on_expn},
    {"HELP", &SmtpSession::on_help}, {"QUIT", &SmtpSession::on_quit},
};

SmtpSession::SmtpSession(sdk::Connection& connection, sdk::ServerContext& server, const sdk::ListenerInfo& listener,
                         sdk::ClientInfo client, const SmtpSettings& settings, Role role)
    : connection_(connection),
      server_(server),
      listener_(listener),
      client_(std::move(client)),
      settings_(settings),
      role_(role) {}

void SmtpSession::reply(int code, std::string_view enhanced, std::string_view text) {
  if (enhanced.empty()) {
    pending_ += fmt::format("{} {}\r\n", code, text);
  } else {
    pending_ += fmt::format("{} {} {}\r\n", code, enhanced, text);
  }
}

void SmtpSession::reply_verdict(const sdk::Verdict& verdict) {
  reply(verdict.code, verdict.enhanced, verdict.text);
  if (verdict.kind == sdk::VerdictKind::disconnect) closing_ = true;
}

void SmtpSession::error(int code, std::string_view enhanced, std::string_view text) {
  if (++errors_ >= settings_.max_errors) {
    reply(421, "4.7.0", fmt::format("{} Too many errors, closing connection", server_.hostname()));
    closing_ = true;
    return;
  }
  reply(code, enhanced, text);
}

sdk::Task<void> SmtpSession::flush() {
  if (pending_.empty()) co_return;
  const std::string out = std::exchange(pending_, {});
  const bool written = co_await connection_.write(out);
  if (!written) closing_ = true;
}

sdk::Task<void> SmtpSession::run() {
  {
    SmtpHookContext context(sdk::Stage::connect, client_, nullptr);
    const sdk::Verdict verdict = co_await server_.run_hooks(sdk::Stage::connect, context);
    if (verdict.refuses()) {
      // A refused client gets the refusal as its greeting and the connection ends (RFC 5321 section 3.1).
      // Only 220, 421 and 554 may greet: a defer becomes 421, a reject 554.
      const bool permanent = verdict.kind == sdk::VerdictKind::reject || verdict.code >= 500;
      reply(permanent ? 554 : 421, permanent ? "5.7.1" : "4.7.0", verdict.text);
      closing_ = true;
    }
  }
  connection_.set_read_timeout(settings_.command_timeout);
  if (!closing_) reply(220, "", fmt::format("{} ESMTP Tern", server_.hostname()));

  std::string line;
  while (!closing_) {
    if (!connection_.input_pending()) co_await flush();
    if (closing_) break;
    const sdk::ReadStatus status = co_await connection_.read_command(line, kCommandLineLimit);
    if (status == sdk::ReadStatus::closed) break;
    if (status == sdk::ReadStatus::timeout) {
      reply(421, "4.4.2", fmt::format("{} Timeout, closing connection", server_.hostname()));
      break;
    }
    if (status == sdk::ReadStatus::stopping) {
      reply(421, "4.3.2", fmt::format("{} Service shutting down, closing connection", server_.hostname()));
      break;
    }
    if (status == sdk::ReadStatus::too_long) {
      error(500, "5.5.2", "Line too long");
      continue;
    }
    auto [verb, argument] = split_command(sdk::strip_line_end(line));
    const Command* command = std::find_if(std::begin(kCommands), std::end(kCommands),
                                          [&verb](const Command& entry) { return verb == entry.verb; });
    if (command == std::end(kCommands)) {
      error(500, "5.5.2", "Command not recognized");
      continue;
    }
    // g++ 12 miscompiles co_await nested in a larger expression: each one stands alone (docs/architecture.md).
    sdk::Task<void> handler = (this->*(command->handler))(argument);
    co_await std::move(handler);
  }
  co_await flush();

  SmtpHookContext context(sdk::Stage::disconnect, client_, nullptr);
  co_await server_.run_hooks(sdk::Stage::disconnect, context);
}

sdk::Task<void> SmtpSession::greet(std::string_view argument, bool extended) {
  if (argument.empty()) {
    error(501, "5.5.4", extended ? "Syntax: EHLO hostname" : "Syntax: HELO hostname");
    co_return;
  }
  SmtpHookContext context(sdk::Stage::helo, client_, nullptr);
  client_.helo = std::string(argument);
  const sdk::Verdict verdict = co_await server_.run_hooks(sdk::Stage::helo, context);
  if (verdict.refuses()) {
    client_.helo.clear();
    reply_verdict(verdict);
    co_return;
  }
  reset_transaction();
  extended_ = extended;
  if (!extended) {
    reply(250, "", server_.hostname());
    co_return;
  }
  pending_ += fmt::format(
      "250-{}\r\n250-PIPELINING\r\n250-SIZE {}\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n"
      "250-CHUNKING\r\n250-DSN\r\n",
      server_.hostname(), settings_.max_message_size);
  if (listener_.tls == sdk::TlsMode::starttls && connection_.can_start_tls()) pending_ += "250-STARTTLS\r\n";
  if (auth_offered()) pending_ += "250-AUTH PLAIN LOGIN\r\n";
  pending_ += "250 HELP\r\n";
}

sdk::Task<void> SmtpSession::on_ehlo(std::string_view argument) {
  return greet(argument, true);
}
sdk::Task<void> SmtpSession::on_helo(std::string_view argument) {
  return greet(argument, false);
}

sdk::Task<void> SmtpSession::on_starttls(std::string_view argument) {
  if (!argument.empty()) {
    error(501, "5.5.4", "Syntax: STARTTLS");
    co_return;
  }
  if (listener_.tls != sdk::TlsMode::starttls || !connection_.can_start_tls()) {
    error(502, "5.5.1", connection_.tls_active() ? "TLS is active already" : "STARTTLS not available");
    co_return;
  }
  reply(220, "2.0.0", "Ready to start TLS");
  co_await flush();
  if (closing_) co_return;
  const bool secured = co_await connection_.start_tls();
  if (!secured) {
    server_.log().info("TLS handshake failed");
    closing_ = true;
    co_return;
  }
  // RFC 3207: the session starts over; what the client said before TLS is forgotten.
  client_.tls = true;
  client_.helo.clear();
  extended_ = false;
  reset_transaction();
}

sdk::Task<void> SmtpSession::on_rset(std::string_view) {
  reset_transaction();
  reply(250, "2.0.0", "Ok");
  co_return;
}

sdk::Task<void> SmtpSession::on_noop(std::string_view) {
  reply(250, "2.0.0", "Ok");
  co_return;
}

sdk::Task<void> SmtpSession::on_vrfy(std::string_view) {
  // Answering VRFY would tell spammers which addresses exist (RFC 5321 section 7.3).
  reply(252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery");
  co_return;
}

sdk::Task<void> SmtpSession::on_expn(std::string_view) {
  // Expanding lists tells who is on them (RFC 5321 section 7.3): not offered.
  reply(502, "5.5.1", "EXPN not available");
  co_return;
}

sdk::Task<void> SmtpSession::on_help(std::string_view) {
  reply(214, "2.0.0", "Commands: EHLO HELO STARTTLS AUTH MAIL RCPT DATA BDAT RSET NOOP VRFY EXPN HELP QUIT");
  co_return;
}

sdk::Task<void> SmtpSession::on_quit(std::string_view) {
  reply(221, "2.0.0", "Bye");
  closing_ = true;
  co_return;
}

void SmtpSession::reset_transaction() {
  envelope_.reset();
  destinations_ = {};
  declared_size_ = 0;
  data_decision_ = {};
  chunking_ = false;
  chunks_refused_ = false;
  chunked_size_ = 0;
  chunks_.clear();
}

}  // namespace tern::smtp
