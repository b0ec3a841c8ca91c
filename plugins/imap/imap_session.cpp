#include "imap_session.hpp"

#include <algorithm>

#include "tern/sdk/base64.hpp"
#include "tern/sdk/sasl.hpp"
#include "tern/sdk/session_hook_context.hpp"
#include "tern/sdk/text.hpp"

namespace tern::imap {
namespace {

// One line of a command, between literals: 64 KiB and its CRLF, as clients with long ID or SEARCH lines expect.
constexpr std::size_t kLineLimit = 64 * 1024 + 2;
constexpr std::uint64_t kLiteralLimit = 64 * 1024 * 1024;  // the largest literal (an APPENDed message)
constexpr auto kAutologout = std::chrono::minutes(30);     // RFC 3501 section 5.4
// Commands answered BAD in a row before the session ends: a client that makes mistakes gets its answers, one
// that sends nothing but garbage is cut off.
constexpr unsigned kBadInARow = 20;

}  // namespace

bool ImapSession::reports_news_after(std::string_view command) {
  // FETCH, STORE, SEARCH and the sequence-numbered SORT and THREAD may not be followed by EXPUNGE; NOOP and
  // IDLE report by themselves; the others close or change the selected mailbox.
  static constexpr std::string_view kQuiet[] = {"FETCH", "STORE", "SEARCH",   "SORT",   "THREAD",  "NOOP",
                                                "IDLE",  "CLOSE", "UNSELECT", "SELECT", "EXAMINE", "LOGOUT"};
  return std::find(std::begin(kQuiet), std::end(kQuiet), command) == std::end(kQuiet);
}

std::optional<std::string> ImapSession::mailbox_argument(const Value& value) const {
  std::optional<std::string> name = rev2_ ? std::optional<std::string>(value.text) : utf7_to_utf8(value.text);
  if (!name) return std::nullopt;
  while (name->size() > 1 && name->back() == '/') name->pop_back();
  // INBOX is case-insensitive (RFC 3501 section 5.1); every other name is as stored.
  if (sdk::lower_ascii(*name) == "inbox") *name = "INBOX";
  return name;
}

const ImapSession::Entry ImapSession::kCommands[] = {
    {"CAPABILITY", kBefore | kAfter | kSelected, &ImapSession::on_capability},
    {"NOOP", kBefore | kAfter | kSelected, &ImapSession::on_noop},
    {"LOGOUT", kBefore | kAfter | kSelected, &ImapSession::on_logout},
    {"ID", kBefore | kAfter | kSelected, &ImapSession::on_id},
    {"STARTTLS", kBefore, &ImapSession::on_starttls},
    {"LOGIN", kBefore, &ImapSession::on_login},
    {"AUTHENTICATE", kBefore, &ImapSession::on_authenticate},
    {"LIST", kAfter | kSelected, &ImapSession::on_list},
    {"LSUB", kAfter | kSelected, &ImapSession::on_list},
    {"NAMESPACE", kAfter | kSelected, &ImapSession::on_namespace},
    {"STATUS", kAfter | kSelected, &ImapSession::on_status},
    {"SELECT", kAfter | kSelected, &ImapSession::on_select},
    {"EXAMINE", kAfter | kSelected, &ImapSession::on_select},
    {"IDLE", kAfter | kSelected, &ImapSession::on_idle},
    {"ENABLE", kAfter | kSelected, &ImapSession::on_enable},
    {"CREATE", kAfter | kSelected, &ImapSession::on_create},
    {"DELETE", kAfter | kSelected, &ImapSession::on_delete},
    {"RENAME", kAfter | kSelected, &ImapSession::on_rename},
    {"SUBSCRIBE", kAfter | kSelected, &ImapSession::on_subscribe},
    {"UNSUBSCRIBE", kAfter | kSelected, &ImapSession::on_subscribe},
    {"APPEND", kAfter | kSelected, &ImapSession::on_append},
    {"GETQUOTAROOT", kAfter | kSelected, &ImapSession::on_getquotaroot},
    {"GETQUOTA", kAfter | kSelected, &ImapSession::on_getquota},
    {"SETQUOTA", kAfter | kSelected, &ImapSession::on_setquota},
    {"COPY", kSelected, &ImapSession::on_copy},
    {"UID COPY", kSelected, &ImapSession::on_copy},
    {"MOVE", kSelected, &ImapSession::on_copy},
    {"UID MOVE", kSelected, &ImapSession::on_copy},
    {"UID EXPUNGE", kSelected, &ImapSession::on_uid_expunge},
    {"CHECK", kSelected, &ImapSession::on_noop},
    {"FETCH", kSelected, &ImapSession::on_fetch},
    {"UID FETCH", kSelected, &ImapSession::on_fetch},
    {"STORE", kSelected, &ImapSession::on_store},
    {"UID STORE", kSelected, &ImapSession::on_store},
    {"SEARCH", kSelected, &ImapSession::on_search},
    {"UID SEARCH", kSelected, &ImapSession::on_search},
    {"SORT", kSelected, &ImapSession::on_sort},
    {"UID SORT", kSelected, &ImapSession::on_sort},
    {"THREAD", kSelected, &ImapSession::on_thread},
    {"UID THREAD", kSelected, &ImapSession::on_thread},
    {"EXPUNGE", kSelected, &ImapSession::on_expunge},
    {"CLOSE", kSelected, &ImapSession::on_close},
    {"UNSELECT", kSelected, &ImapSession::on_close},
};

ImapSession::ImapSession(sdk::Connection& connection, sdk::ServerContext& server, const sdk::ListenerInfo& listener,
                         sdk::ClientInfo client, StructureCache& structures, MailboxLists& lists, RecentClaims& recent)
    : connection_(connection),
      server_(server),
      listener_(listener),
      client_(std::move(client)),
      structures_(structures),
      lists_(lists),
      recent_claims_(recent) {}

void ImapSession::count_reply(bool bad) {
  bad_in_a_row_ = bad ? bad_in_a_row_ + 1 : 0;
  if (bad_in_a_row_ < kBadInARow || closing_) return;
  untagged("BYE Too many invalid commands");
  closing_ = true;
}

sdk::Task<void> ImapSession::flush() {
  if (pending_.empty()) co_return;
  const std::string out = std::exchange(pending_, {});
  const bool written = co_await connection_.write(out);
  if (!written) closing_ = true;
}

std::string ImapSession::capabilities() const {
  std::string text = fmt::format(
      "CAPABILITY IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ID IDLE NAMESPACE UNSELECT SPECIAL-USE UIDPLUS MOVE ENABLE "
      "CHILDREN LIST-EXTENDED LIST-STATUS ESEARCH SEARCHRES BINARY CONDSTORE QRESYNC QUOTA QUOTA=RES-STORAGE "
      "QUOTA=RES-MESSAGE "
      "CREATE-SPECIAL-USE SORT THREAD=ORDEREDSUBJECT THREAD=REFERENCES APPENDLIMIT={}",
      kLiteralLimit);
  if (state_ == State::not_authenticated) {
    if (listener_.tls == sdk::TlsMode::starttls && connection_.can_start_tls()) text += " STARTTLS";
    text += login_allowed() ? " AUTH=PLAIN" : " LOGINDISABLED";
  }
  return text;
}

sdk::Task<bool> ImapSession::read_command(std::string& text, std::string& tag_hint) {
  text.clear();
  std::string line;
  sdk::ReadStatus status = co_await connection_.read_command(line, kLineLimit);
  for (;;) {
    if (status == sdk::ReadStatus::stopping) {
      untagged("BYE Server shutting down");
      co_return false;
    }
    if (status == sdk::ReadStatus::timeout) {
      untagged("BYE Autologout; idle for too long");
      co_return false;
    }
    if (status == sdk::ReadStatus::closed) co_return false;
    if (status == sdk::ReadStatus::too_long) {
      // The command's tag is in the head the connection kept: the client gets its tagged BAD and goes on.
      // Without a readable tag no reply could end the command the client waits on, so the session ends.
      const std::string_view start = text.empty() ? std::string_view(line) : std::string_view(text);
      const std::string_view tag = start.substr(0, start.find(' '));
      text.clear();
      if (tag.size() == start.size() || !is_tag(tag)) {
        untagged("BYE Line too long");
        co_return false;
      }
      pending_ += fmt::format("{} BAD Line too long ({} octets at most)\r\n", tag, kLineLimit - 2);
      count_reply(true);
      co_return !closing_;
    }
    text += line;
    const auto literal = trailing_literal(line);
    if (!literal) co_return true;
    const auto [size, non_synchronizing] = *literal;
    if (size > kLiteralLimit) {
      const std::size_t space = text.find(' ');
      tag_hint = text.substr(0, space);
      if (non_synchronizing) {
        // The client sends the octets without waiting: nothing can be trusted on this connection any more.
        untagged("BYE Literal too large");
        co_return false;
      }
      // An APPEND past APPENDLIMIT is a NO (the message is refused, RFC 7889); any other command is malformed.
      const std::string verb = sdk::lower_ascii(text.substr(space + 1, text.find(' ', space + 1) - space - 1));
      pending_ += fmt::format("{} {} [TOOBIG] Literal too large\r\n", tag_hint, verb == "append" ? "NO" : "BAD");
      text.clear();
      co_return true;
    }
    if (!non_synchronizing) {
      pending_ += "+ Ready for literal data\r\n";
      co_await flush();
    }
    status = co_await connection_.read_bytes(text, size);
    if (status != sdk::ReadStatus::ok) co_return false;
    status = co_await connection_.read_line(line, kLineLimit);
  }
}

sdk::Task<void> ImapSession::run() {
  connection_.set_read_timeout(std::chrono::duration_cast<std::chrono::seconds>(kAutologout));
  {
    sdk::SessionHookContext context(sdk::Stage::connect, client_);
    const sdk::Verdict verdict = co_await server_.run_hooks(sdk::Stage::connect, context);
    if (verdict.refuses()) {
      untagged(fmt::format("BYE {}", verdict.text));
      closing_ = true;
    }
  }
  if (!closing_) untagged(fmt::format("OK [{}] {} IMAP4rev1 Tern ready", capabilities(), server_.hostname()));
  std::string text;
  while (!closing_) {
    if (!connection_.input_pending()) co_await flush();
    if (closing_) break;
    std::string tag;
    const bool more = co_await read_command(text, tag);
    if (!more) break;
    if (text.empty()) continue;
    std::optional<Command> command = parse_command(text, tag);
    if (!command) {
      pending_ += tag.empty() ? "* BAD Syntax error\r\n" : fmt::format("{} BAD Syntax error\r\n", tag);
      count_reply(true);
      continue;
    }
    const Entry* entry = std::find_if(std::begin(kCommands), std::end(kCommands),
                                      [&](const Entry& candidate) { return command->name == candidate.name; });
    if (entry == std::end(kCommands)) {
      tagged(*command, "BAD", "Unknown command");
      count_reply(true);
      continue;
    }
    const unsigned state = state_ == State::not_authenticated ? kBefore
                           : state_ == State::authenticated   ? kAfter
                                                              : kSelected;
    const bool state_ok = (entry->states & state) != 0;
    if (!state_ok) {
      tagged(*command, "BAD", "Command not valid in this state");
      count_reply(true);
      continue;
    }
    // g++ 12 miscompiles co_await nested in a larger expression: each one stands alone (docs/architecture.md).
    const bool was_selected = state_ == State::selected;
    const std::size_t before = pending_.size();
    answered_bad_ = false;
    probe_.reset();
    probe_wanted_ = was_selected && reports_news_after(command->name);
    refreshed_ = false;
    sdk::Task<void> handler = (this->*(entry->handler))(*command);
    co_await std::move(handler);
    count_reply(answered_bad_);
    if (probe_wanted_ && !refreshed_ && state_ == State::selected && tagged_at_ >= before &&
        tagged_at_ < pending_.size()) {
      // What other sessions, SMTP and POP3 changed goes out before the tagged reply of most commands, as RFC
      // 3501 section 7.4.1 allows, so a client hears of it without NOOP.
      std::string tail = pending_.substr(tagged_at_);
      pending_.resize(tagged_at_);
      co_await refresh();
      pending_ += tail;
    }
  }
  co_await flush();
  sdk::SessionHookContext context(sdk::Stage::disconnect, client_);
  co_await server_.run_hooks(sdk::Stage::disconnect, context);
}

sdk::Task<void> ImapSession::on_capability(const Command& command) {
  untagged(capabilities());
  tagged(command, "OK", "CAPABILITY completed");
  co_return;
}

sdk::Task<void> ImapSession::on_noop(const Command& command) {
  if (state_ == State::selected) {
    const bool fresh = co_await refresh();
    if (!fresh) {
      tagged(command, "NO", "[UNAVAILABLE] Mailbox not available, try again");
      co_return;
    }
  }
  tagged(command, "OK", fmt::format("{} completed", command.name));
}

sdk::Task<void> ImapSession::on_logout(const Command& command) {
  untagged("BYE Logging out");
  tagged(command, "OK", "LOGOUT completed");
  closing_ = true;
  co_return;
}

sdk::Task<void> ImapSession::on_id(const Command& command) {
  // RFC 2971: the server says who it is; what the client says is not used.
  untagged("ID (\"name\" \"Tern\")");
  tagged(command, "OK", "ID completed");
  co_return;
}

sdk::Task<void> ImapSession::on_starttls(const Command& command) {
  if (listener_.tls != sdk::TlsMode::starttls || !connection_.can_start_tls()) {
    tagged(command, "NO", connection_.tls_active() ? "TLS is active already" : "STARTTLS not available");
    co_return;
  }
  tagged(command, "OK", "Begin TLS negotiation now");
  co_await flush();
  if (closing_) co_return;
  const bool secured = co_await connection_.start_tls();
  if (!secured) {
    closing_ = true;
    co_return;
  }
  client_.tls = true;
}

sdk::Task<void> ImapSession::on_login(const Command& command) {
  if (command.arguments.size() != 2 || !command.arguments[0].is_astring() || !command.arguments[1].is_astring()) {
    tagged(command, "BAD", "Syntax: LOGIN user password");
    co_return;
  }
  if (!login_allowed()) {
    tagged(command, "NO", "[PRIVACYREQUIRED] Plaintext login disallowed without TLS; use STARTTLS");
    co_return;
  }
  co_await log_in(command, command.arguments[0].text, command.arguments[1].text);
}

sdk::Task<void> ImapSession::on_authenticate(const Command& command) {
  if (command.arguments.empty() || command.arguments.size() > 2 || !command.arguments[0].is_atom("PLAIN")) {
    tagged(command, "NO", "Only AUTHENTICATE PLAIN is supported");
    co_return;
  }
  if (!login_allowed()) {
    tagged(command, "NO", "[PRIVACYREQUIRED] Authentication disallowed without TLS; use STARTTLS");
    co_return;
  }
  std::string response;
  if (command.arguments.size() == 2) {
    response = command.arguments[1].text;  // SASL-IR (RFC 4959)
  } else {
    pending_ += "+ \r\n";
    co_await flush();
    std::string line;
    const sdk::ReadStatus status = co_await connection_.read_line(line, kLineLimit);
    if (status != sdk::ReadStatus::ok) {
      closing_ = true;
      co_return;
    }
    response = std::string(sdk::strip_line_end(line));
    if (response == "*") {
      tagged(command, "BAD", "Authentication cancelled");
      co_return;
    }
  }
  const std::optional<sdk::PlainCredentials> credentials = sdk::decode_sasl_plain(response);
  if (!credentials) {
    tagged(command, "BAD", "Cannot decode the response");
    co_return;
  }
  co_await log_in(command, credentials->user, credentials->password);
}

sdk::Task<void> ImapSession::log_in(const Command& command, std::string_view user, std::string_view password) {
  const sdk::LoginResult login = co_await server_.authenticate(client_, user, password);
  if (login.status == sdk::LoginResult::Status::blocked) {
    untagged("BYE Too many authentication failures");
    tagged(command, "NO", "[UNAVAILABLE] Too many authentication failures");
    closing_ = true;
    co_return;
  }
  if (!login.ok()) {
    tagged(command, "NO", "[AUTHENTICATIONFAILED] Authentication failed");
    co_return;
  }
  client_.user = login.user;
  sdk::SessionHookContext context(sdk::Stage::login, client_);
  const sdk::Verdict verdict = co_await server_.run_hooks(sdk::Stage::login, context);
  if (verdict.refuses()) {
    client_.user.clear();
    tagged(command, "NO", fmt::format("[CONTACTADMIN] {}", verdict.text));
    closing_ = verdict.kind == sdk::VerdictKind::disconnect;
    co_return;
  }
  state_ = State::authenticated;
  server_.log().info(fmt::format("imap login {}", client_.user));
  tagged(command, "OK", fmt::format("[{}] Logged in", capabilities()));
}

sdk::Task<void> ImapSession::on_idle(const Command& command) {
  // RFC 2177: news of the selected mailbox goes out as it happens, until the client says DONE.
  pending_ += "+ idling\r\n";
  co_await flush();
  const auto deadline = std::chrono::steady_clock::now() + kAutologout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::seconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      untagged("BYE Autologout; idle for too long");
      closing_ = true;
      co_return;
    }
    const sdk::WakeReason reason = co_await server_.wait_for_news(connection_, client_.user, left);
    if (reason == sdk::WakeReason::stopping) {
      untagged("BYE Server shutting down");
      closing_ = true;
      co_return;
    }
    if (reason == sdk::WakeReason::mailbox_changed && state_ == State::selected) {
      const bool fresh = co_await refresh();
      if (fresh) co_await flush();
      if (closing_) co_return;
      continue;
    }
    if (reason == sdk::WakeReason::input) break;
  }
  std::string line;
  const sdk::ReadStatus status = co_await connection_.read_line(line, kLineLimit);
  if (status != sdk::ReadStatus::ok) {
    closing_ = true;
    co_return;
  }
  if (sdk::lower_ascii(sdk::strip_line_end(line)) != "done") {
    tagged(command, "BAD", "Expected DONE");
    co_return;
  }
  tagged(command, "OK", "IDLE terminated");
}

}  // namespace tern::imap
