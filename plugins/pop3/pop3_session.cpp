#include "pop3_session.hpp"
#include "pop3_syntax.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "tern/sdk/base64.hpp"
#include "tern/sdk/sasl.hpp"
#include "tern/sdk/session_hook_context.hpp"
#include "tern/sdk/text.hpp"

namespace tern::pop3 {
namespace {

constexpr std::size_t kCommandLineLimit = 255;          // RFC 2449 section 4
constexpr std::size_t kSaslLineLimit = 8192;            // AUTH responses are exempt from it (RFC 5034)
constexpr auto kAutologout = std::chrono::minutes(10);  // RFC 1939 section 3

}  // namespace

const Pop3Session::Command Pop3Session::kCommands[] = {
    {"CAPA", false, &Pop3Session::on_capa}, {"STLS", false, &Pop3Session::on_stls},
    {"USER", false, &Pop3Session::on_user}, {"PASS", false, &Pop3Session::on_pass},
    {"AUTH", false, &Pop3Session::on_auth}, {"QUIT", false, &Pop3Session::on_quit},
    {"CAPA", true, &Pop3Session::on_capa},  {"QUIT", true, &Pop3Session::on_quit},
    {"STAT", true, &Pop3Session::on_stat},  {"LIST", true, &Pop3Session::on_list},
    {"UIDL", true, &Pop3Session::on_uidl},  {"RETR", true, &Pop3Session::on_retr},
    {"TOP", true, &Pop3Session::on_top},    {"DELE", true, &Pop3Session::on_dele},
    {"RSET", true, &Pop3Session::on_rset},  {"NOOP", true, &Pop3Session::on_noop},
};

Pop3Session::Pop3Session(sdk::Connection& connection, sdk::ServerContext& server, const sdk::ListenerInfo& listener,
                         sdk::ClientInfo client, MaildropLocks& locks)
    : connection_(connection), server_(server), listener_(listener), client_(std::move(client)), locks_(locks) {}

Pop3Session::~Pop3Session() {
  if (logged_in_) locks_.unlock(client_.user);
}

void Pop3Session::ok(std::string_view text) {
  pending_ += fmt::format("+OK {}\r\n", text);
}

void Pop3Session::err(std::string_view text) {
  pending_ += fmt::format("-ERR {}\r\n", text);
}

sdk::Task<void> Pop3Session::flush() {
  if (pending_.empty()) co_return;
  const std::string out = std::exchange(pending_, {});
  const bool written = co_await connection_.write(out);
  if (!written) closing_ = true;
}

sdk::Task<void> Pop3Session::run() {
  connection_.set_read_timeout(std::chrono::duration_cast<std::chrono::seconds>(kAutologout));
  {
    sdk::SessionHookContext context(sdk::Stage::connect, client_);
    const sdk::Verdict verdict = co_await server_.run_hooks(sdk::Stage::connect, context);
    if (verdict.decided() && verdict.kind != sdk::VerdictKind::accept) {
      err(fmt::format("[{}] {}", verdict.code >= 500 ? "SYS/PERM" : "SYS/TEMP", verdict.text));
      closing_ = true;
    }
  }
  if (!closing_) ok(fmt::format("{} POP3 Tern ready", server_.hostname()));
  std::string line;
  while (!closing_) {
    // Pipelined commands are answered together, but a client that sends many RETRs at once does not get them
    // all built in memory first.
    if (!connection_.input_pending() || pending_.size() > 256 * 1024) co_await flush();
    if (closing_) break;
    sdk::ReadStatus status = co_await connection_.read_command(line, kCommandLineLimit);
    if (status == sdk::ReadStatus::closed || status == sdk::ReadStatus::timeout) break;
    if (status == sdk::ReadStatus::stopping) {
      err("[SYS/TEMP] Server shutting down");
      break;
    }
    if (status == sdk::ReadStatus::too_long) {
      err("Line too long");
      continue;
    }
    const CommandLine parsed = split_command(sdk::strip_line_end(line));
    const std::string_view argument = parsed.argument;
    const Command* command = std::find_if(std::begin(kCommands), std::end(kCommands), [&](const Command& entry) {
      return parsed.verb == entry.verb && entry.after_login == logged_in_;
    });
    if (command == std::end(kCommands)) {
      err(logged_in_ ? "Unknown command" : "Unknown command, or not before login");
      continue;
    }
    // g++ 12 miscompiles co_await nested in a larger expression: each one stands alone (docs/architecture.md).
    sdk::Task<void> handler = (this->*(command->handler))(argument);
    co_await std::move(handler);
  }
  co_await flush();
  // A dropped connection leaves the maildrop as it was: deletions happen only at QUIT.
  sdk::SessionHookContext context(sdk::Stage::disconnect, client_);
  co_await server_.run_hooks(sdk::Stage::disconnect, context);
}

sdk::Task<void> Pop3Session::on_capa(std::string_view) {
  // No APOP: it needs the password in clear on the server, and Tern keeps only argon2id hashes.
  std::string capabilities =
      "+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n";
  if (!logged_in_ && login_allowed()) capabilities += "USER\r\nSASL PLAIN LOGIN\r\n";
  if (!logged_in_ && listener_.tls == sdk::TlsMode::starttls && connection_.can_start_tls()) capabilities += "STLS\r\n";
  capabilities += "IMPLEMENTATION Tern\r\n.\r\n";
  send(capabilities);
  co_return;
}

sdk::Task<void> Pop3Session::on_stls(std::string_view) {
  if (listener_.tls != sdk::TlsMode::starttls || !connection_.can_start_tls()) {
    err(connection_.tls_active() ? "TLS is active already" : "STLS not available");
    co_return;
  }
  ok("Begin TLS negotiation");
  co_await flush();
  if (closing_) co_return;
  const bool secured = co_await connection_.start_tls();
  if (!secured) {
    closing_ = true;
    co_return;
  }
  client_.tls = true;
  pending_user_.clear();
}

sdk::Task<void> Pop3Session::on_user(std::string_view argument) {
  if (!login_allowed()) {
    err("[AUTH] Plaintext authentication disallowed on non-secure connections; use STLS");
    co_return;
  }
  if (argument.empty()) {
    err("Syntax: USER name");
    co_return;
  }
  pending_user_ = std::string(argument);
  ok("Send your password");
}

sdk::Task<void> Pop3Session::on_pass(std::string_view argument) {
  if (!login_allowed()) {
    err("[AUTH] Plaintext authentication disallowed on non-secure connections; use STLS");
    co_return;
  }
  if (pending_user_.empty()) {
    err("Send USER first");
    co_return;
  }
  const std::string user = std::exchange(pending_user_, {});
  co_await log_in(user, argument);
}

sdk::Task<std::optional<std::string>> Pop3Session::sasl_response(std::string_view challenge) {
  send(fmt::format("+ {}\r\n", challenge));
  co_await flush();
  std::string line;
  const sdk::ReadStatus status = co_await connection_.read_line(line, kSaslLineLimit);
  if (status != sdk::ReadStatus::ok) {
    if (status != sdk::ReadStatus::too_long) closing_ = true;
    co_return std::nullopt;
  }
  std::string response(sdk::strip_line_end(line));
  if (response == "*") co_return std::nullopt;
  co_return response;
}

sdk::Task<void> Pop3Session::on_auth(std::string_view argument) {
  // RFC 5034. A bare AUTH lists the mechanisms, as older clients expect.
  if (argument.empty()) {
    send(login_allowed() ? "+OK Mechanisms follow\r\nPLAIN\r\nLOGIN\r\n.\r\n" : "+OK Mechanisms follow\r\n.\r\n");
    co_return;
  }
  if (!login_allowed()) {
    err("[AUTH] Plaintext authentication disallowed on non-secure connections; use STLS");
    co_return;
  }
  const std::size_t space = argument.find(' ');
  const std::string mechanism = sdk::lower_ascii(argument.substr(0, space));
  std::optional<std::string> initial;
  if (space != std::string_view::npos) initial = std::string(argument.substr(space + 1));
  if (mechanism == "plain") {
    // "=" is an empty initial response (RFC 5034 section 4): the credentials come after a challenge.
    if (initial == "=") initial.reset();
    if (!initial) {
      std::optional<std::string> response = co_await sasl_response("");
      if (!response) {
        err("Authentication cancelled");
        co_return;
      }
      initial = std::move(response);
    }
    const std::optional<sdk::PlainCredentials> credentials = sdk::decode_sasl_plain(*initial);
    if (!credentials) {
      err("[AUTH] Cannot decode the response");
      co_return;
    }
    co_await log_in(credentials->user, credentials->password);
    co_return;
  }
  if (mechanism == "login") {
    // The challenges are "Username:" and "Password:" in base64, as every LOGIN client expects.
    if (!initial) {
      std::optional<std::string> response = co_await sasl_response("VXNlcm5hbWU6");
      if (!response) {
        err("Authentication cancelled");
        co_return;
      }
      initial = std::move(response);
    }
    const std::optional<std::string> user = sdk::base64_decode(*initial);
    if (!user) {
      err("[AUTH] Cannot decode the response");
      co_return;
    }
    const std::optional<std::string> response = co_await sasl_response("UGFzc3dvcmQ6");
    if (!response) {
      err("Authentication cancelled");
      co_return;
    }
    const std::optional<std::string> password = sdk::base64_decode(*response);
    if (!password) {
      err("[AUTH] Cannot decode the response");
      co_return;
    }
    co_await log_in(*user, *password);
    co_return;
  }
  err("Unsupported mechanism; PLAIN and LOGIN are offered");
}

sdk::Task<void> Pop3Session::log_in(std::string_view user, std::string_view password) {
  const sdk::LoginResult login = co_await server_.authenticate(client_, user, password);
  if (login.status == sdk::LoginResult::Status::blocked) {
    err("[AUTH] Too many authentication failures, closing connection");
    closing_ = true;
    co_return;
  }
  if (!login.ok()) {
    err("[AUTH] Authentication failed");
    co_return;
  }
  sdk::ClientInfo candidate = client_;
  candidate.user = login.user;
  sdk::SessionHookContext context(sdk::Stage::login, candidate);
  sdk::Verdict verdict = co_await server_.run_hooks(sdk::Stage::login, context);
  if (verdict.decided() && verdict.kind != sdk::VerdictKind::accept) {
    closing_ = verdict.kind == sdk::VerdictKind::disconnect;
    err(fmt::format("[{}] {}", verdict.code >= 500 ? "AUTH" : "SYS/TEMP", verdict.text));
    co_return;
  }
  // One session at a time holds a maildrop (RFC 1939 section 8, RFC 2449's IN-USE).
  if (!locks_.try_lock(login.user)) {
    err("[IN-USE] Maildrop already in use by another session");
    co_return;
  }
  client_.user = login.user;
  logged_in_ = true;
  sdk::MailStore& store = server_.store();
  const std::optional<std::string> failure =
      co_await server_.attempt([&] { messages_ = store.mailboxes().list_messages(client_.user, "INBOX"); });
  if (failure) {
    server_.log().error(fmt::format("listing the maildrop failed: {}", *failure));
    locks_.unlock(client_.user);
    logged_in_ = false;
    client_.user.clear();
    err("[SYS/TEMP] Maildrop not available, try again later");
    co_return;
  }
  deleted_.assign(messages_.size(), false);
  server_.log().info(fmt::format("pop3 login {} ({} messages)", client_.user, messages_.size()));
  ok(fmt::format("Logged in, {} messages", messages_.size()));
}

}  // namespace tern::pop3
