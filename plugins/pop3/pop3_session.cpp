#include "pop3_session.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

#include "tern/sdk/session_hook_context.hpp"
#include "tern/sdk/text.hpp"

namespace tern::pop3 {
namespace {

constexpr std::size_t kCommandLineLimit = 255;          // RFC 2449 section 4
constexpr auto kAutologout = std::chrono::minutes(10);  // RFC 1939 section 3

std::optional<std::size_t> parse_number(std::string_view text) {
  std::size_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// Dot-stuffs a message for the multi-line response and ends it with CRLF "." CRLF (RFC 1939 section 3).
// With `body_lines`, only the header and that many body lines go out (TOP).
std::string multiline(std::string_view message, std::optional<std::size_t> body_lines) {
  std::string out;
  out.reserve(message.size() + message.size() / 64 + 8);
  bool in_body = false;
  std::size_t body_count = 0;
  while (!message.empty()) {
    std::size_t end = message.find('\n');
    std::string_view line = message.substr(0, end == std::string_view::npos ? message.size() : end);
    message.remove_prefix(end == std::string_view::npos ? message.size() : end + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (in_body && body_lines && body_count++ >= *body_lines) break;
    if (!in_body && line.empty()) in_body = true;
    if (!line.empty() && line.front() == '.') out += '.';
    out.append(line).append("\r\n");
  }
  out += ".\r\n";
  return out;
}

}  // namespace

const Pop3Session::Command Pop3Session::kCommands[] = {
    {"CAPA", false, &Pop3Session::on_capa}, {"STLS", false, &Pop3Session::on_stls},
    {"USER", false, &Pop3Session::on_user}, {"PASS", false, &Pop3Session::on_pass},
    {"QUIT", false, &Pop3Session::on_quit}, {"CAPA", true, &Pop3Session::on_capa},
    {"QUIT", true, &Pop3Session::on_quit},  {"STAT", true, &Pop3Session::on_stat},
    {"LIST", true, &Pop3Session::on_list},  {"UIDL", true, &Pop3Session::on_uidl},
    {"RETR", true, &Pop3Session::on_retr},  {"TOP", true, &Pop3Session::on_top},
    {"DELE", true, &Pop3Session::on_dele},  {"RSET", true, &Pop3Session::on_rset},
    {"NOOP", true, &Pop3Session::on_noop},
};

Pop3Session::Pop3Session(sdk::Connection& connection, sdk::ServerContext& server, const sdk::ListenerInfo& listener,
                         sdk::ClientInfo client)
    : connection_(connection), server_(server), listener_(listener), client_(std::move(client)) {}

sdk::Task<void> Pop3Session::send(std::string_view text) {
  const bool written = co_await connection_.write(text);
  if (!written) closing_ = true;
}

sdk::Task<void> Pop3Session::ok(std::string_view text) {
  co_await send(fmt::format("+OK {}\r\n", text));
}

sdk::Task<void> Pop3Session::err(std::string_view text) {
  co_await send(fmt::format("-ERR {}\r\n", text));
}

sdk::Task<void> Pop3Session::run() {
  connection_.set_read_timeout(std::chrono::duration_cast<std::chrono::seconds>(kAutologout));
  {
    sdk::SessionHookContext context(sdk::Stage::connect, client_);
    const sdk::Verdict verdict = co_await server_.run_hooks(sdk::Stage::connect, context);
    if (verdict.decided() && verdict.kind != sdk::VerdictKind::accept) {
      const std::string why = fmt::format("[{}] {}", verdict.code >= 500 ? "SYS/PERM" : "SYS/TEMP", verdict.text);
      co_await err(why);
      closing_ = true;
    }
  }
  if (!closing_) {
    co_await ok(fmt::format("{} POP3 Tern ready", server_.hostname()));
  }
  std::string line;
  while (!closing_) {
    sdk::ReadStatus status = co_await connection_.read_command(line, kCommandLineLimit);
    if (status == sdk::ReadStatus::closed || status == sdk::ReadStatus::timeout) break;
    if (status == sdk::ReadStatus::stopping) {
      co_await err("[SYS/TEMP] Server shutting down");
      break;
    }
    if (status == sdk::ReadStatus::too_long) {
      co_await err("Line too long");
      continue;
    }
    std::string_view text = sdk::strip_line_end(line);
    std::size_t space = text.find(' ');
    std::string verb(text.substr(0, space));
    std::transform(verb.begin(), verb.end(), verb.begin(), [](unsigned char c) { return std::toupper(c); });
    std::string_view argument = space == std::string_view::npos ? std::string_view() : text.substr(space + 1);
    const Command* command = std::find_if(std::begin(kCommands), std::end(kCommands), [&](const Command& entry) {
      return verb == entry.verb && entry.after_login == logged_in_;
    });
    if (command == std::end(kCommands)) {
      const std::string_view why = logged_in_ ? "Unknown command" : "Unknown command, or not before login";
      co_await err(why);
      continue;
    }
    // g++ 12 miscompiles co_await nested in a larger expression: each one stands alone (docs/architecture.md).
    sdk::Task<void> handler = (this->*(command->handler))(argument);
    co_await std::move(handler);
  }
  // A dropped connection leaves the maildrop as it was: deletions happen only at QUIT.
  sdk::SessionHookContext context(sdk::Stage::disconnect, client_);
  co_await server_.run_hooks(sdk::Stage::disconnect, context);
}

sdk::Task<void> Pop3Session::on_capa(std::string_view) {
  std::string capabilities = "+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\n";
  if (!logged_in_ && login_allowed()) capabilities += "USER\r\n";
  if (!logged_in_ && listener_.tls == sdk::TlsMode::starttls && connection_.can_start_tls()) capabilities += "STLS\r\n";
  capabilities += "IMPLEMENTATION Tern\r\n.\r\n";
  co_await send(capabilities);
}

sdk::Task<void> Pop3Session::on_stls(std::string_view) {
  if (listener_.tls != sdk::TlsMode::starttls || !connection_.can_start_tls()) {
    const std::string_view why = connection_.tls_active() ? "TLS is active already" : "STLS not available";
    co_await err(why);
    co_return;
  }
  co_await ok("Begin TLS negotiation");
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
    co_await err("[AUTH] Plaintext authentication disallowed on non-secure connections; use STLS");
    co_return;
  }
  if (argument.empty()) {
    co_await err("Syntax: USER name");
    co_return;
  }
  pending_user_ = std::string(argument);
  co_await ok("Send your password");
}

sdk::Task<void> Pop3Session::on_pass(std::string_view argument) {
  if (!login_allowed()) {
    co_await err("[AUTH] Plaintext authentication disallowed on non-secure connections; use STLS");
    co_return;
  }
  if (pending_user_.empty()) {
    co_await err("Send USER first");
    co_return;
  }
  std::string user = std::exchange(pending_user_, {});
  const sdk::LoginResult login = co_await server_.authenticate(client_, user, argument);
  if (login.status == sdk::LoginResult::Status::blocked) {
    co_await err("[AUTH] Too many authentication failures, closing connection");
    closing_ = true;
    co_return;
  }
  if (!login.ok()) {
    co_await err("[AUTH] Authentication failed");
    co_return;
  }
  client_.user = login.user;
  sdk::SessionHookContext context(sdk::Stage::login, client_);
  sdk::Verdict verdict = co_await server_.run_hooks(sdk::Stage::login, context);
  if (verdict.decided() && verdict.kind != sdk::VerdictKind::accept) {
    client_.user.clear();
    closing_ = verdict.kind == sdk::VerdictKind::disconnect;
    const std::string why = fmt::format("[{}] {}", verdict.code >= 500 ? "AUTH" : "SYS/TEMP", verdict.text);
    co_await err(why);
    co_return;
  }
  sdk::MailStore& store = server_.store();
  const std::optional<std::string> failure =
      co_await server_.attempt([&] { messages_ = store.list_messages(client_.user, "INBOX"); });
  if (failure) {
    server_.log().error(fmt::format("listing the maildrop failed: {}", *failure));
    client_.user.clear();
    co_await err("[SYS/TEMP] Maildrop not available, try again later");
    co_return;
  }
  deleted_.assign(messages_.size(), false);
  logged_in_ = true;
  server_.log().info(fmt::format("pop3 login {} ({} messages)", client_.user, messages_.size()));
  co_await ok(fmt::format("Logged in, {} messages", messages_.size()));
}

sdk::Task<void> Pop3Session::on_quit(std::string_view) {
  closing_ = true;
  if (!logged_in_) {
    co_await ok("Bye");
    co_return;
  }
  std::vector<std::int64_t> ids;
  for (std::size_t i = 0; i < messages_.size(); ++i) {
    if (deleted_[i]) ids.push_back(messages_[i].id);
  }
  sdk::MailStore& store = server_.store();
  const std::optional<std::string> failure =
      co_await server_.attempt([&] { store.remove_messages(client_.user, ids); });
  if (failure) {
    server_.log().error(fmt::format("removing messages failed: {}", *failure));
    co_await err("[SYS/TEMP] Some deleted messages not removed");
    co_return;
  }
  if (!ids.empty()) server_.mailbox_changed({client_.user});
  co_await ok(fmt::format("Bye, {} messages deleted", ids.size()));
}

sdk::Task<const sdk::MessageEntry*> Pop3Session::message_argument(std::string_view argument) {
  std::optional<std::size_t> number = parse_number(argument);
  if (!number || *number == 0 || *number > messages_.size()) {
    co_await err("No such message");
    co_return nullptr;
  }
  if (deleted_[*number - 1]) {
    co_await err("Message is deleted");
    co_return nullptr;
  }
  co_return &messages_[*number - 1];
}

sdk::Task<void> Pop3Session::on_stat(std::string_view) {
  std::size_t count = 0;
  std::uint64_t octets = 0;
  for (std::size_t i = 0; i < messages_.size(); ++i) {
    if (deleted_[i]) continue;
    ++count;
    octets += messages_[i].size;
  }
  co_await ok(fmt::format("{} {}", count, octets));
}

sdk::Task<void> Pop3Session::on_list(std::string_view argument) {
  if (!argument.empty()) {
    const sdk::MessageEntry* entry = co_await message_argument(argument);
    if (entry) {
      co_await ok(fmt::format("{} {}", entry - messages_.data() + 1, entry->size));
    }
    co_return;
  }
  std::string text = "+OK Scan listing follows\r\n";
  for (std::size_t i = 0; i < messages_.size(); ++i) {
    if (!deleted_[i]) text += fmt::format("{} {}\r\n", i + 1, messages_[i].size);
  }
  co_await send(text + ".\r\n");
}

sdk::Task<void> Pop3Session::on_uidl(std::string_view argument) {
  if (!argument.empty()) {
    const sdk::MessageEntry* entry = co_await message_argument(argument);
    if (entry) {
      co_await ok(fmt::format("{} {}", entry - messages_.data() + 1, entry->unique_id));
    }
    co_return;
  }
  std::string text = "+OK Unique-ID listing follows\r\n";
  for (std::size_t i = 0; i < messages_.size(); ++i) {
    if (!deleted_[i]) text += fmt::format("{} {}\r\n", i + 1, messages_[i].unique_id);
  }
  co_await send(text + ".\r\n");
}

sdk::Task<void> Pop3Session::send_message(const sdk::MessageEntry& entry, std::optional<std::size_t> body_lines) {
  std::string content;
  sdk::MailStore& store = server_.store();
  const std::optional<std::string> failure =
      co_await server_.attempt([&] { content = store.read_message(client_.user, entry.id); });
  if (failure) {
    server_.log().error(fmt::format("reading message {} failed: {}", entry.id, *failure));
    co_await err("[SYS/TEMP] Message not available, try again later");
    co_return;
  }
  co_await send(fmt::format("+OK {} octets\r\n", content.size()) + multiline(content, body_lines));
}

sdk::Task<void> Pop3Session::on_retr(std::string_view argument) {
  const sdk::MessageEntry* entry = co_await message_argument(argument);
  if (entry) {
    co_await send_message(*entry, std::nullopt);
  }
}

sdk::Task<void> Pop3Session::on_top(std::string_view argument) {
  std::size_t space = argument.find(' ');
  std::optional<std::size_t> lines =
      space == std::string_view::npos ? std::nullopt : parse_number(argument.substr(space + 1));
  if (!lines) {
    co_await err("Syntax: TOP msg n");
    co_return;
  }
  const sdk::MessageEntry* entry = co_await message_argument(argument.substr(0, space));
  if (entry) {
    co_await send_message(*entry, lines);
  }
}

sdk::Task<void> Pop3Session::on_dele(std::string_view argument) {
  const sdk::MessageEntry* entry = co_await message_argument(argument);
  if (entry) {
    std::size_t index = static_cast<std::size_t>(entry - messages_.data());
    deleted_[index] = true;
    co_await ok(fmt::format("Message {} deleted", index + 1));
  }
}

sdk::Task<void> Pop3Session::on_rset(std::string_view) {
  std::fill(deleted_.begin(), deleted_.end(), false);
  co_await ok(fmt::format("{} messages", messages_.size()));
}

sdk::Task<void> Pop3Session::on_noop(std::string_view) {
  co_await ok("");
}

}  // namespace tern::pop3
