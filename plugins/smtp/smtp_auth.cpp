// SMTP AUTH (RFC 4954) with the PLAIN (RFC 4616) and LOGIN mechanisms.
#include <fmt/format.h>

#include "smtp_hook_context.hpp"
#include "smtp_session.hpp"
#include "smtp_syntax.hpp"
#include "tern/sdk/base64.hpp"
#include "tern/sdk/sasl.hpp"
#include "tern/sdk/text.hpp"

namespace tern::smtp {
namespace {

constexpr std::size_t kSaslLineLimit = 12288;  // an AUTH answer: RFC 4954 allows more than a command line

}  // namespace

bool SmtpSession::auth_offered() const {
  return client_.user.empty() && (connection_.tls_active() || listener_.allow_plaintext_auth);
}

sdk::Task<std::optional<std::string>> SmtpSession::sasl_answer(std::string_view challenge) {
  reply(334, "", challenge);
  co_await flush();
  if (closing_) co_return std::nullopt;
  std::string line;
  const sdk::ReadStatus status = co_await connection_.read_line(line, kSaslLineLimit);
  if (status != sdk::ReadStatus::ok) {
    closing_ = true;
    co_return std::nullopt;
  }
  std::string answer(sdk::strip_line_end(line));
  if (answer == "*") co_return std::nullopt;
  co_return answer;
}

sdk::Task<void> SmtpSession::on_auth(std::string_view argument) {
  if (client_.helo.empty() || !extended_) {
    error(503, "5.5.1", "Send EHLO first");
    co_return;
  }
  if (!client_.user.empty()) {
    error(503, "5.5.1", "Already authenticated");
    co_return;
  }
  if (envelope_) {
    error(503, "5.5.1", "Not during a mail transaction");
    co_return;
  }
  if (!auth_offered()) {
    error(538, "5.7.11", "Encryption required for requested authentication mechanism");
    co_return;
  }
  auto [mechanism, initial] = split_command(argument);
  std::optional<sdk::PlainCredentials> credentials;
  if (mechanism == "PLAIN") {
    std::optional<std::string> encoded = std::string(initial);
    if (initial.empty()) encoded = co_await sasl_answer("");
    if (!encoded) {
      if (!closing_) error(501, "5.0.0", "Authentication cancelled");
      co_return;
    }
    credentials = sdk::decode_sasl_plain(*encoded);
  } else if (mechanism == "LOGIN") {
    std::optional<std::string> name = std::string(initial);
    if (initial.empty()) name = co_await sasl_answer(sdk::base64_encode("Username:"));
    std::optional<std::string> secret;
    if (name) secret = co_await sasl_answer(sdk::base64_encode("Password:"));
    if (!name || !secret) {
      if (!closing_) error(501, "5.0.0", "Authentication cancelled");
      co_return;
    }
    std::optional<std::string> user = sdk::base64_decode(*name);
    std::optional<std::string> password = sdk::base64_decode(*secret);
    if (user && password) credentials = sdk::PlainCredentials{std::move(*user), std::move(*password)};
  } else {
    error(504, "5.5.4", "Unrecognized authentication mechanism");
    co_return;
  }
  if (!credentials) {
    error(501, "5.5.2", "Cannot decode the response");
    co_return;
  }

  const sdk::LoginResult login = co_await server_.authenticate(client_, credentials->user, credentials->password);
  if (login.status == sdk::LoginResult::Status::blocked) {
    reply(421, "4.7.0", fmt::format("{} Too many authentication failures, closing connection", server_.hostname()));
    closing_ = true;
    co_return;
  }
  if (!login.ok()) {
    error(535, "5.7.8", "Authentication credentials invalid");
    co_return;
  }
  client_.user = login.user;
  SmtpHookContext context(sdk::Stage::auth, client_, nullptr);
  const sdk::Verdict verdict = co_await server_.run_hooks(sdk::Stage::auth, context);
  if (verdict.refuses()) {
    client_.user.clear();
    reply_verdict(verdict);
    co_return;
  }
  server_.log().info(fmt::format("authenticated as {}", client_.user));
  reply(235, "2.7.0", "Authentication successful");
}

}  // namespace tern::smtp
