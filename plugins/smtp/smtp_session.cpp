#include "smtp_session.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <algorithm>
#include <ctime>

#include "smtp_hook_context.hpp"
#include "smtp_syntax.hpp"
#include "tern/sdk/base64.hpp"

namespace tern::smtp {
namespace {

constexpr std::size_t kCommandLineLimit = 512;  // RFC 5321 section 4.5.3.1.4, CRLF included
constexpr std::size_t kTextLineLimit = 1000;    // RFC 5321 section 4.5.3.1.6, CRLF included
constexpr std::size_t kSaslLineLimit = 12288;   // an AUTH answer: RFC 4954 allows more than a command line

std::string_view strip_line_end(std::string_view line) {
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

std::string rfc5322_date() {
  std::time_t now = std::time(nullptr);
  std::tm local{};
  ::localtime_r(&now, &local);
  char buffer[64];
  std::strftime(buffer, sizeof buffer, "%a, %d %b %Y %H:%M:%S %z", &local);
  return buffer;
}

}  // namespace

const SmtpSession::Command SmtpSession::kCommands[] = {
    {"EHLO", &SmtpSession::on_ehlo}, {"HELO", &SmtpSession::on_helo}, {"STARTTLS", &SmtpSession::on_starttls},
    {"AUTH", &SmtpSession::on_auth}, {"MAIL", &SmtpSession::on_mail}, {"RCPT", &SmtpSession::on_rcpt},
    {"DATA", &SmtpSession::on_data}, {"RSET", &SmtpSession::on_rset}, {"NOOP", &SmtpSession::on_noop},
    {"VRFY", &SmtpSession::on_vrfy}, {"HELP", &SmtpSession::on_help}, {"QUIT", &SmtpSession::on_quit},
};

SmtpSession::SmtpSession(sdk::Connection& connection, sdk::ServerContext& server, const sdk::ListenerInfo& listener,
                         sdk::ClientInfo client, const SmtpSettings& settings, Role role)
    : connection_(connection),
      server_(server),
      listener_(listener),
      client_(std::move(client)),
      settings_(settings),
      role_(role) {}

sdk::Task<void> SmtpSession::reply(int code, std::string_view enhanced, std::string_view text) {
  std::string line =
      enhanced.empty() ? fmt::format("{} {}\r\n", code, text) : fmt::format("{} {} {}\r\n", code, enhanced, text);
  const bool written = co_await connection_.write(line);
  if (!written) closing_ = true;
}

sdk::Task<void> SmtpSession::reply_verdict(const sdk::Verdict& verdict) {
  co_await reply(verdict.code, verdict.enhanced, verdict.text);
  if (verdict.kind == sdk::VerdictKind::disconnect) closing_ = true;
}

sdk::Task<void> SmtpSession::error(int code, std::string_view enhanced, std::string_view text) {
  if (++errors_ >= settings_.max_errors) {
    co_await reply(421, "4.7.0", fmt::format("{} Too many errors, closing connection", server_.hostname()));
    closing_ = true;
    co_return;
  }
  co_await reply(code, enhanced, text);
}

sdk::Task<void> SmtpSession::run() {
  {
    SmtpHookContext context(sdk::Stage::connect, client_, nullptr);
    sdk::Verdict verdict = co_await server_.run_hooks(sdk::Stage::connect, context);
    if (verdict.refuses()) {
      // A refused client gets the refusal as its greeting and the connection ends (RFC 5321 section 3.1).
      // Only 220, 421 and 554 may greet: a defer becomes 421, a reject 554.
      const bool permanent = verdict.kind == sdk::VerdictKind::reject || verdict.code >= 500;
      const int code = permanent ? 554 : 421;
      const std::string_view enhanced = permanent ? "5.7.1" : "4.7.0";
      co_await reply(code, enhanced, verdict.text);
      closing_ = true;
    }
  }
  connection_.set_read_timeout(settings_.command_timeout);
  if (!closing_) {
    co_await reply(220, "", fmt::format("{} ESMTP Tern", server_.hostname()));
  }

  std::string line;
  while (!closing_) {
    sdk::ReadStatus status = co_await connection_.read_command(line, kCommandLineLimit);
    if (status == sdk::ReadStatus::closed) break;
    if (status == sdk::ReadStatus::timeout) {
      co_await reply(421, "4.4.2", fmt::format("{} Timeout, closing connection", server_.hostname()));
      break;
    }
    if (status == sdk::ReadStatus::stopping) {
      co_await reply(421, "4.3.2", fmt::format("{} Service shutting down, closing connection", server_.hostname()));
      break;
    }
    if (status == sdk::ReadStatus::too_long) {
      co_await error(500, "5.5.2", "Line too long");
      continue;
    }
    auto [verb, argument] = split_command(strip_line_end(line));
    const Command* command = std::find_if(std::begin(kCommands), std::end(kCommands),
                                          [&verb](const Command& entry) { return verb == entry.verb; });
    if (command == std::end(kCommands)) {
      co_await error(500, "5.5.2", "Command not recognized");
      continue;
    }
    // g++ 12 miscompiles co_await nested in a larger expression: each one stands alone (docs/architecture.md).
    sdk::Task<void> handler = (this->*(command->handler))(argument);
    co_await std::move(handler);
  }

  SmtpHookContext context(sdk::Stage::disconnect, client_, nullptr);
  co_await server_.run_hooks(sdk::Stage::disconnect, context);
}

sdk::Task<void> SmtpSession::greet(std::string_view argument, bool extended) {
  if (argument.empty()) {
    co_await error(501, "5.5.4", "Syntax: EHLO hostname");
    co_return;
  }
  SmtpHookContext context(sdk::Stage::helo, client_, nullptr);
  client_.helo = std::string(argument);
  sdk::Verdict verdict = co_await server_.run_hooks(sdk::Stage::helo, context);
  if (verdict.decided() && verdict.kind != sdk::VerdictKind::accept) {
    client_.helo.clear();
    co_await reply_verdict(verdict);
    co_return;
  }
  reset_transaction();
  extended_ = extended;
  if (!extended) {
    co_await reply(250, "", server_.hostname());
    co_return;
  }
  std::string text =
      fmt::format("250-{}\r\n250-PIPELINING\r\n250-SIZE {}\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n",
                  server_.hostname(), settings_.max_message_size);
  if (listener_.tls == sdk::TlsMode::starttls && connection_.can_start_tls()) text += "250-STARTTLS\r\n";
  if (auth_offered()) text += "250-AUTH PLAIN LOGIN\r\n";
  text += "250 HELP\r\n";
  const bool written = co_await connection_.write(text);
  if (!written) closing_ = true;
}

sdk::Task<void> SmtpSession::on_ehlo(std::string_view argument) {
  co_await greet(argument, true);
}
sdk::Task<void> SmtpSession::on_helo(std::string_view argument) {
  co_await greet(argument, false);
}

bool SmtpSession::auth_offered() const {
  return client_.user.empty() && (connection_.tls_active() || listener_.allow_plaintext_auth);
}

sdk::Task<void> SmtpSession::on_starttls(std::string_view argument) {
  if (!argument.empty()) {
    co_await error(501, "5.5.4", "Syntax: STARTTLS");
    co_return;
  }
  if (listener_.tls != sdk::TlsMode::starttls || !connection_.can_start_tls()) {
    const std::string_view why = connection_.tls_active() ? "TLS is active already" : "STARTTLS not available";
    co_await error(502, "5.5.1", why);
    co_return;
  }
  co_await reply(220, "2.0.0", "Ready to start TLS");
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

sdk::Task<std::optional<std::string>> SmtpSession::sasl_answer(std::string_view challenge) {
  co_await reply(334, "", challenge);
  std::string line;
  if (closing_) co_return std::nullopt;
  const sdk::ReadStatus status = co_await connection_.read_line(line, kSaslLineLimit);
  if (status != sdk::ReadStatus::ok) {
    closing_ = true;
    co_return std::nullopt;
  }
  std::string answer(strip_line_end(line));
  if (answer == "*") co_return std::nullopt;
  co_return answer;
}

sdk::Task<void> SmtpSession::on_auth(std::string_view argument) {
  if (client_.helo.empty() || !extended_) {
    co_await error(503, "5.5.1", "Send EHLO first");
    co_return;
  }
  if (!client_.user.empty() || envelope_) {
    const std::string_view why = client_.user.empty() ? "Not during a mail transaction" : "Already authenticated";
    co_await error(503, "5.5.1", why);
    co_return;
  }
  if (!auth_offered()) {
    co_await error(538, "5.7.11", "Encryption required for requested authentication mechanism");
    co_return;
  }
  auto [mechanism, initial] = split_command(argument);
  std::string user;
  std::string password;
  if (mechanism == "PLAIN") {
    std::optional<std::string> encoded = std::string(initial);
    if (initial.empty()) encoded = co_await sasl_answer("");
    if (!encoded) {
      if (!closing_) {
        co_await error(501, "5.0.0", "Authentication cancelled");
      }
      co_return;
    }
    // RFC 4616: authzid NUL authcid NUL passwd. An authzid other than the user is not allowed.
    std::optional<std::string> decoded = *encoded == "=" ? std::string() : sdk::base64_decode(*encoded);
    std::size_t first = decoded ? decoded->find('\0') : std::string::npos;
    std::size_t second = first == std::string::npos ? std::string::npos : decoded->find('\0', first + 1);
    if (second == std::string::npos) {
      co_await error(501, "5.5.2", "Malformed PLAIN response");
      co_return;
    }
    std::string authzid = decoded->substr(0, first);
    user = decoded->substr(first + 1, second - first - 1);
    password = decoded->substr(second + 1);
    if (!authzid.empty() && lower_ascii(authzid) != lower_ascii(user)) {
      co_await error(535, "5.7.8", "Authentication credentials invalid");
      co_return;
    }
  } else if (mechanism == "LOGIN") {
    std::optional<std::string> name = std::string(initial);
    if (initial.empty()) name = co_await sasl_answer(sdk::base64_encode("Username:"));
    std::optional<std::string> secret;
    if (name) secret = co_await sasl_answer(sdk::base64_encode("Password:"));
    if (!name || !secret) {
      if (!closing_) {
        co_await error(501, "5.0.0", "Authentication cancelled");
      }
      co_return;
    }
    std::optional<std::string> decoded_name = sdk::base64_decode(*name);
    std::optional<std::string> decoded_secret = sdk::base64_decode(*secret);
    if (!decoded_name || !decoded_secret) {
      co_await error(501, "5.5.2", "Malformed LOGIN response");
      co_return;
    }
    user = std::move(*decoded_name);
    password = std::move(*decoded_secret);
  } else {
    co_await error(504, "5.5.4", "Unrecognized authentication mechanism");
    co_return;
  }

  std::optional<std::string> account = co_await server_.authenticate(client_, user, password);
  if (!account) {
    co_await error(535, "5.7.8", "Authentication credentials invalid");
    co_return;
  }
  client_.user = *account;
  SmtpHookContext context(sdk::Stage::auth, client_, nullptr);
  sdk::Verdict verdict = co_await server_.run_hooks(sdk::Stage::auth, context);
  if (verdict.decided() && verdict.kind != sdk::VerdictKind::accept) {
    client_.user.clear();
    co_await reply_verdict(verdict);
    co_return;
  }
  server_.log().info(fmt::format("authenticated as {}", client_.user));
  co_await reply(235, "2.7.0", "Authentication successful");
}

sdk::Task<void> SmtpSession::on_mail(std::string_view argument) {
  if (client_.helo.empty()) {
    co_await error(503, "5.5.1", "Send HELO or EHLO first");
    co_return;
  }
  if (envelope_) {
    co_await error(503, "5.5.1", "Sender already given");
    co_return;
  }
  if (role_ == Role::submission && client_.user.empty()) {
    co_await error(530, "5.7.0", "Authentication required");
    co_return;
  }
  std::optional<PathArgument> path = parse_path_argument(argument, "FROM");
  if (!path) {
    co_await error(501, "5.5.4", "Syntax: MAIL FROM:<address>");
    co_return;
  }
  for (const auto& [name, value] : path->parameters) {
    if (name == "SIZE" && extended_) {
      std::size_t size = 0;
      const bool digits = std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; });
      if (value.empty() || value.size() > 19 || !digits) {
        co_await error(501, "5.5.4", "Syntax: SIZE=<octets>");
        co_return;
      }
      size = std::stoull(value);
      if (size > settings_.max_message_size) {
        co_await reply(552, "5.3.4", "Message size exceeds fixed maximum message size");
        co_return;
      }
    } else if (name == "BODY" && extended_ && (lower_ascii(value) == "7bit" || lower_ascii(value) == "8bitmime")) {
      continue;
    } else {
      co_await error(555, "5.5.4", fmt::format("Unsupported parameter {}", name));
      co_return;
    }
  }
  sdk::Envelope envelope;
  envelope.sender = path->address;
  SmtpHookContext context(sdk::Stage::mail, client_, &envelope);
  sdk::Verdict verdict = co_await server_.run_hooks(sdk::Stage::mail, context);
  if (verdict.decided() && verdict.kind != sdk::VerdictKind::accept) {
    co_await reply_verdict(verdict);
    co_return;
  }
  envelope_ = std::move(envelope);
  co_await reply(250, "2.1.0", "Sender OK");
}

sdk::Task<void> SmtpSession::on_rcpt(std::string_view argument) {
  if (!envelope_) {
    co_await error(503, "5.5.1", "Need MAIL before RCPT");
    co_return;
  }
  std::optional<PathArgument> path = parse_path_argument(argument, "TO");
  if (!path) {
    co_await error(501, "5.5.4", "Syntax: RCPT TO:<address>");
    co_return;
  }
  if (!path->parameters.empty()) {
    co_await error(555, "5.5.4", fmt::format("Unsupported parameter {}", path->parameters.front().first));
    co_return;
  }
  if (envelope_->recipients.size() >= settings_.max_recipients) {
    co_await reply(452, "4.5.3", "Too many recipients");
    co_return;
  }
  const std::string address = path->address;
  const std::string domain = lower_ascii(address.substr(address.rfind('@') + 1));
  std::vector<std::string> users;
  bool local = false;
  sdk::MailStore& store = server_.store();
  const std::optional<std::string> failure = co_await server_.attempt([&] {
    local = store.is_local_domain(domain);
    if (local) users = store.resolve_recipient(address);
  });
  if (failure) {
    server_.log().error(fmt::format("recipient lookup failed: {}", *failure));
    co_await reply(451, "4.3.0", "Temporary lookup failure, try again later");
    co_return;
  }
  if (!local) {
    // No relay networks by default, and outbound delivery is not part of this build: nobody relays.
    co_await error(554, "5.7.1", fmt::format("<{}>: Relay access denied", address));
    co_return;
  }
  if (users.empty()) {
    co_await error(550, "5.1.1", fmt::format("<{}>: Recipient address rejected: User unknown", address));
    co_return;
  }
  SmtpHookContext context(sdk::Stage::rcpt, client_, &*envelope_);
  context.set_recipient(address);
  sdk::Verdict verdict = co_await server_.run_hooks(sdk::Stage::rcpt, context);
  if (verdict.decided() && verdict.kind != sdk::VerdictKind::accept) {
    co_await reply_verdict(verdict);
    co_return;
  }
  envelope_->recipients.push_back(address);
  for (std::string& user : users) {
    if (std::find(local_users_.begin(), local_users_.end(), user) == local_users_.end()) {
      local_users_.push_back(std::move(user));
    }
  }
  co_await reply(250, "2.1.5", "Recipient OK");
}

sdk::Task<bool> SmtpSession::read_data(std::string& message, std::string& problem) {
  // Only <CRLF>.<CRLF> ends the message. A line ending in a bare LF, or holding a bare CR, makes the whole
  // message refused once it is read to its end: no variant of the end marker can smuggle a second message.
  bool oversized = false;
  bool too_long = false;
  bool bare = false;
  std::string line;
  for (;;) {
    sdk::ReadStatus status = co_await connection_.read_line(line, kTextLineLimit);
    if (status == sdk::ReadStatus::too_long) {
      too_long = true;
      continue;
    }
    if (status != sdk::ReadStatus::ok) co_return false;
    if (line == ".\r\n") break;
    std::string_view content(line);
    if (content.size() < 2 || content[content.size() - 2] != '\r') {
      bare = true;
    } else if (content.substr(0, content.size() - 2).find('\r') != std::string_view::npos) {
      bare = true;
    }
    if (!content.empty() && content.front() == '.') content.remove_prefix(1);
    if (message.size() + content.size() > settings_.max_message_size) {
      oversized = true;
      continue;
    }
    if (!oversized) message.append(content);
  }
  if (oversized)
    problem = "552 5.3.4 Message size exceeds fixed maximum message size";
  else if (too_long)
    problem = "500 5.5.2 Line too long (1000 octets at most, CRLF included)";
  else if (bare)
    problem = "550 5.6.0 Bare CR or LF in message; lines must end with CRLF";
  co_return true;
}

sdk::Task<void> SmtpSession::on_data(std::string_view argument) {
  if (!argument.empty()) {
    co_await error(501, "5.5.4", "Syntax: DATA");
    co_return;
  }
  if (!envelope_) {
    co_await error(503, "5.5.1", "Need MAIL before DATA");
    co_return;
  }
  if (envelope_->recipients.empty()) {
    co_await error(554, "5.5.1", "No valid recipients");
    co_return;
  }
  {
    SmtpHookContext context(sdk::Stage::data, client_, &*envelope_);
    sdk::Verdict verdict = co_await server_.run_hooks(sdk::Stage::data, context);
    if (verdict.refuses()) {
      co_await reply_verdict(verdict);
      co_return;
    }
    // A discard or quarantine decided before the body arrives still applies to it.
    if (verdict.kind == sdk::VerdictKind::discard || verdict.kind == sdk::VerdictKind::quarantine) {
      data_decision_ = verdict;
    }
  }
  co_await reply(354, "", "End data with <CR><LF>.<CR><LF>");
  if (closing_) co_return;
  std::string message;
  std::string problem;
  const bool complete = co_await read_data(message, problem);
  if (!complete) {
    closing_ = true;
    co_return;
  }
  if (!problem.empty()) {
    reset_transaction();
    co_await connection_.write(problem + "\r\n");
    co_return;
  }
  co_await store_message(std::move(message));
  reset_transaction();
}

std::string SmtpSession::received_header() const {
  // RFC 5321 section 4.4 trace field; "with" per RFC 3848 (ESMTPS = TLS, A = authenticated).
  std::string with = extended_ ? "ESMTP" : "SMTP";
  if (extended_ && client_.tls) with += "S";
  if (extended_ && !client_.user.empty()) with += "A";
  std::string header = fmt::format("Received: from {} ([{}])\r\n\tby {} (Tern) with {} id {}.{}", client_.helo,
                                   client_.address, server_.hostname(), with, client_.session_id, transactions_);
  if (envelope_->recipients.size() == 1) header += fmt::format("\r\n\tfor <{}>", envelope_->recipients.front());
  header += fmt::format(";\r\n\t{}\r\n", rfc5322_date());
  return header;
}

sdk::Task<void> SmtpSession::store_message(std::string message) {
  ++transactions_;
  SmtpHookContext context(sdk::Stage::message, client_, &*envelope_);
  context.set_message(message);
  sdk::Verdict verdict = co_await server_.run_hooks(sdk::Stage::message, context);
  if (verdict.refuses()) {
    co_await reply_verdict(verdict);
    co_return;
  }
  if (data_decision_.decided()) verdict = data_decision_;
  const std::string queue_id = fmt::format("{}.{}", client_.session_id, transactions_);
  if (verdict.kind == sdk::VerdictKind::discard) {
    server_.log().info(fmt::format("message {} discarded by a hook", queue_id));
    co_await reply(250, "2.0.0", fmt::format("Ok: queued as {}", queue_id));
    co_return;
  }
  std::string stored = received_header() + context.added_headers() + message;
  const std::string folder = verdict.kind == sdk::VerdictKind::quarantine ? verdict.folder : "INBOX";
  sdk::MailStore& store = server_.store();
  const std::optional<std::string> failure =
      co_await server_.attempt([&] { store.deliver(stored, local_users_, folder); });
  if (failure) {
    server_.log().error(fmt::format("storing message {} failed: {}", queue_id, *failure));
    co_await reply(451, "4.3.0", "Temporary failure storing the message, try again later");
    co_return;
  }
  server_.log().info(fmt::format("message {} from <{}> stored for {} ({} octets{})", queue_id, envelope_->sender,
                                 fmt::join(local_users_, ", "), stored.size(),
                                 folder == "INBOX" ? "" : ", in " + folder));
  co_await reply(250, "2.0.0", fmt::format("Ok: queued as {}", queue_id));
  SmtpHookContext queued(sdk::Stage::queued, client_, &*envelope_);
  queued.set_message(stored);
  co_await server_.run_hooks(sdk::Stage::queued, queued);
}

sdk::Task<void> SmtpSession::on_rset(std::string_view) {
  reset_transaction();
  co_await reply(250, "2.0.0", "Ok");
}

sdk::Task<void> SmtpSession::on_noop(std::string_view) {
  co_await reply(250, "2.0.0", "Ok");
}

sdk::Task<void> SmtpSession::on_vrfy(std::string_view) {
  // Answering VRFY would tell spammers which addresses exist (RFC 5321 section 7.3).
  co_await reply(252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery");
}

sdk::Task<void> SmtpSession::on_help(std::string_view) {
  co_await reply(214, "2.0.0", "Commands: EHLO HELO STARTTLS AUTH MAIL RCPT DATA RSET NOOP VRFY HELP QUIT");
}

sdk::Task<void> SmtpSession::on_quit(std::string_view) {
  co_await reply(221, "2.0.0", "Bye");
  closing_ = true;
}

void SmtpSession::reset_transaction() {
  envelope_.reset();
  data_decision_ = {};
  local_users_.clear();
}

}  // namespace tern::smtp
