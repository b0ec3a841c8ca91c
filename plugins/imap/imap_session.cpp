#include "imap_session.hpp"

#include <algorithm>

#include "tern/sdk/base64.hpp"
#include "tern/sdk/sasl.hpp"
#include "tern/sdk/session_hook_context.hpp"
#include "tern/sdk/text.hpp"

namespace tern::imap {
namespace {

constexpr std::size_t kLineLimit = 8192;                   // one line of a command, between literals
constexpr std::uint64_t kLiteralLimit = 64 * 1024 * 1024;  // the largest literal (an APPENDed message)
constexpr auto kAutologout = std::chrono::minutes(30);     // RFC 3501 section 5.4

// LIST patterns (RFC 3501 section 6.3.8): '*' matches anything, '%' anything but the '/' delimiter.
bool matches(std::string_view pattern, std::string_view name) {
  if (pattern.empty()) return name.empty();
  if (pattern.front() == '*' || pattern.front() == '%') {
    for (std::size_t skip = 0; skip <= name.size(); ++skip) {
      if (matches(pattern.substr(1), name.substr(skip))) return true;
      if (skip < name.size() && pattern.front() == '%' && name[skip] == '/') return false;
    }
    return false;
  }
  return !name.empty() && pattern.front() == name.front() && matches(pattern.substr(1), name.substr(1));
}

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

std::optional<ImapSession::Resync> ImapSession::parse_resync(const Value& list) {
  const auto number = [](const Value& value) -> std::optional<std::uint64_t> {
    if (value.kind != Value::Kind::atom || value.text.empty() || value.text.size() > 19 ||
        !std::all_of(value.text.begin(), value.text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return std::nullopt;
    }
    return std::strtoull(value.text.c_str(), nullptr, 10);
  };
  if (list.kind != Value::Kind::list || list.items.size() < 2 || list.items.size() > 4) return std::nullopt;
  const std::optional<std::uint64_t> uidvalidity = number(list.items[0]);
  const std::optional<std::uint64_t> modseq = number(list.items[1]);
  if (!uidvalidity || !modseq || *uidvalidity == 0 || *uidvalidity > 0xffffffffu || *modseq == 0) return std::nullopt;
  Resync resync{static_cast<std::uint32_t>(*uidvalidity), *modseq, std::nullopt};
  if (list.items.size() >= 3) {
    if (list.items[2].kind != Value::Kind::atom) return std::nullopt;
    resync.known = parse_sequence_set(list.items[2].text, 0xffffffffu);
    if (!resync.known) return std::nullopt;
  }
  if (list.items.size() == 4 && list.items[3].kind != Value::Kind::list) return std::nullopt;
  return resync;
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
                         sdk::ClientInfo client, StructureCache& structures, MailboxLists& lists)
    : connection_(connection),
      server_(server),
      listener_(listener),
      client_(std::move(client)),
      structures_(structures),
      lists_(lists) {}

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
      untagged("BAD Line too long");
      co_return true;
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
      continue;
    }
    const Entry* entry = std::find_if(std::begin(kCommands), std::end(kCommands),
                                      [&](const Entry& candidate) { return command->name == candidate.name; });
    if (entry == std::end(kCommands)) {
      tagged(*command, "BAD", "Unknown command");
      continue;
    }
    const unsigned state = state_ == State::not_authenticated ? kBefore
                           : state_ == State::authenticated   ? kAfter
                                                              : kSelected;
    const bool state_ok = (entry->states & state) != 0;
    if (!state_ok) {
      tagged(*command, "BAD", "Command not valid in this state");
      continue;
    }
    // g++ 12 miscompiles co_await nested in a larger expression: each one stands alone (docs/architecture.md).
    const bool was_selected = state_ == State::selected;
    const std::size_t before = pending_.size();
    sdk::Task<void> handler = (this->*(entry->handler))(*command);
    co_await std::move(handler);
    if (was_selected && state_ == State::selected && reports_news_after(command->name) && tagged_at_ >= before &&
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

sdk::Task<void> ImapSession::on_list(const Command& command) {
  // LIST [(selection)] reference pattern-or-(patterns) [RETURN (options)]: RFC 3501 with the extended form of
  // RFC 5258, the STATUS return option of RFC 5819 and the SPECIAL-USE selection of RFC 6154.
  std::vector<Value> arguments = command.arguments;
  bool special_only = false;
  bool subscribed_only = false;
  std::optional<Value> status_items;
  if (command.name == "LIST" && !arguments.empty() && arguments.front().kind == Value::Kind::list) {
    for (const Value& option : arguments.front().items) {
      special_only = special_only || option.is_atom("SPECIAL-USE");
      subscribed_only = subscribed_only || option.is_atom("SUBSCRIBED");
    }
    arguments.erase(arguments.begin());
  }
  if (command.name == "LIST" && arguments.size() == 4 && arguments[2].is_atom("RETURN") &&
      arguments[3].kind == Value::Kind::list) {
    const auto& options = arguments[3].items;
    for (std::size_t i = 0; i < options.size(); ++i) {
      if (options[i].is_atom("STATUS") && i + 1 < options.size() && options[i + 1].kind == Value::Kind::list) {
        status_items = options[++i];
      }
    }
    arguments.resize(2);
  }
  if (arguments.size() != 2 || !arguments[0].is_astring()) {
    tagged(command, "BAD", "Syntax: LIST [(options)] reference pattern [RETURN (options)]");
    co_return;
  }
  std::vector<std::string> patterns;
  for (const Value& pattern :
       arguments[1].kind == Value::Kind::list ? arguments[1].items : std::vector<Value>{arguments[1]}) {
    const std::string joined = arguments[0].text + pattern.text;
    std::optional<std::string> decoded = rev2_ ? std::optional<std::string>(joined) : utf7_to_utf8(joined);
    if (!decoded) {
      tagged(command, "BAD", "Mailbox pattern is not valid modified UTF-7");
      co_return;
    }
    patterns.push_back(std::move(*decoded));
  }
  if (patterns.size() == 1 && arguments[1].text.empty() && arguments[1].kind != Value::Kind::list) {
    untagged(fmt::format("{} (\\Noselect) \"/\" \"\"", command.name));
    tagged(command, "OK", fmt::format("{} completed", command.name));
    co_return;
  }
  std::vector<sdk::MailboxInfo> mailboxes;
  sdk::MailStore& store = server_.store();
  const std::optional<std::string> failure =
      co_await server_.attempt([&] { mailboxes = store.list_mailboxes(client_.user); });
  if (failure) {
    tagged(command, "NO", "[UNAVAILABLE] Mailboxes not available, try again");
    co_return;
  }
  for (const sdk::MailboxInfo& mailbox : mailboxes) {
    const bool inbox = mailbox.name == "INBOX";
    const bool wanted = std::any_of(patterns.begin(), patterns.end(), [&](const std::string& pattern) {
      return matches(pattern, mailbox.name) || (inbox && matches(sdk::lower_ascii(pattern), "inbox"));
    });
    if (!wanted || (special_only && mailbox.special_use.empty())) continue;
    const bool children = std::any_of(mailboxes.begin(), mailboxes.end(), [&](const sdk::MailboxInfo& other) {
      return other.name.starts_with(mailbox.name + "/");
    });
    std::string attributes = children ? "\\HasChildren" : "\\HasNoChildren";
    if (!mailbox.special_use.empty()) attributes += " " + mailbox.special_use;
    // Every mailbox counts as subscribed.
    if (subscribed_only) attributes += " \\Subscribed";
    untagged(fmt::format("{} ({}) \"/\" {}", command.name, attributes, mailbox_text(mailbox.name)));
    if (status_items) {
      std::shared_ptr<const Messages> listed;
      if (status_needs_list(*status_items)) {
        const std::optional<std::string> unavailable = co_await server_.attempt([&] {
          listed = lists_.get(client_.user, mailbox.name, mailbox.uidvalidity, mailbox.highestmodseq,
                              [&] { return store.list_messages(client_.user, mailbox.name); });
        });
        if (unavailable) {
          tagged(command, "NO", "[UNAVAILABLE] Mailboxes not available, try again");
          co_return;
        }
      }
      const std::optional<std::string> status = status_response(mailbox, *status_items, listed.get());
      if (!status) {
        tagged(command, "BAD", "Unknown STATUS item");
        co_return;
      }
      untagged(*status);
    }
  }
  tagged(command, "OK", fmt::format("{} completed", command.name));
}

sdk::Task<void> ImapSession::on_namespace(const Command& command) {
  untagged("NAMESPACE ((\"\" \"/\")) NIL NIL");
  tagged(command, "OK", "NAMESPACE completed");
  co_return;
}

std::optional<std::string> ImapSession::status_response(const sdk::MailboxInfo& mailbox, const Value& items,
                                                        const Messages* listed) const {
  std::string values;
  for (const Value& item : items.items) {
    std::string value;
    if (item.is_atom("MESSAGES")) value = fmt::format("MESSAGES {}", mailbox.messages);
    if (item.is_atom("RECENT")) value = "RECENT 0";
    if (item.is_atom("UIDNEXT")) value = fmt::format("UIDNEXT {}", mailbox.uidnext);
    if (item.is_atom("UIDVALIDITY")) value = fmt::format("UIDVALIDITY {}", mailbox.uidvalidity);
    if (item.is_atom("UNSEEN")) value = fmt::format("UNSEEN {}", mailbox.unseen);
    if (item.is_atom("HIGHESTMODSEQ")) value = fmt::format("HIGHESTMODSEQ {}", mailbox.highestmodseq);
    // IMAP4rev2's SIZE (octets in all) and DELETED (messages marked \Deleted), from the message list.
    if (listed && item.is_atom("SIZE")) {
      std::uint64_t size = 0;
      for (const sdk::MessageEntry& message : *listed) size += message.size;
      value = fmt::format("SIZE {}", size);
    }
    if (listed && item.is_atom("DELETED")) {
      value = fmt::format("DELETED {}", std::count_if(listed->begin(), listed->end(), [](const auto& message) {
                            return has_flag(message.flags, "\\Deleted");
                          }));
    }
    if (value.empty()) return std::nullopt;
    values += (values.empty() ? "" : " ") + value;
  }
  return fmt::format("STATUS {} ({})", mailbox_text(mailbox.name), values);
}

bool ImapSession::status_needs_list(const Value& items) {
  return std::any_of(items.items.begin(), items.items.end(),
                     [](const Value& item) { return item.is_atom("SIZE") || item.is_atom("DELETED"); });
}

sdk::Task<void> ImapSession::on_status(const Command& command) {
  const std::optional<std::string> name =
      command.arguments.empty() ? std::nullopt : mailbox_argument(command.arguments[0]);
  if (command.arguments.size() != 2 || !command.arguments[0].is_astring() ||
      command.arguments[1].kind != Value::Kind::list || !name) {
    tagged(command, "BAD", "Syntax: STATUS mailbox (items)");
    co_return;
  }
  std::vector<sdk::MailboxInfo> mailboxes;
  std::shared_ptr<const Messages> listed;
  sdk::MailStore& store = server_.store();
  const std::optional<std::string> failure = co_await server_.attempt([&] {
    mailboxes = store.list_mailboxes(client_.user);
    auto found = std::find_if(mailboxes.begin(), mailboxes.end(),
                              [&](const sdk::MailboxInfo& mailbox) { return mailbox.name == *name; });
    if (found != mailboxes.end() && status_needs_list(command.arguments[1])) {
      listed = lists_.get(client_.user, *name, found->uidvalidity, found->highestmodseq,
                          [&] { return store.list_messages(client_.user, *name); });
    }
  });
  auto found = std::find_if(mailboxes.begin(), mailboxes.end(),
                            [&](const sdk::MailboxInfo& mailbox) { return mailbox.name == *name; });
  if (failure || found == mailboxes.end()) {
    tagged(command, "NO", "[NONEXISTENT] No such mailbox");
    co_return;
  }
  const std::optional<std::string> status = status_response(*found, command.arguments[1], listed.get());
  if (!status) {
    tagged(command, "BAD", "Unknown STATUS item");
    co_return;
  }
  untagged(*status);
  tagged(command, "OK", "STATUS completed");
}

sdk::Task<void> ImapSession::on_select(const Command& command) {
  const bool parameters = command.arguments.size() == 2 && command.arguments[1].kind == Value::Kind::list;
  const std::optional<std::string> selected =
      command.arguments.empty() ? std::nullopt : mailbox_argument(command.arguments[0]);
  if ((command.arguments.size() != 1 && !parameters) || !command.arguments[0].is_astring() || !selected) {
    tagged(command, "BAD", fmt::format("Syntax: {} mailbox [(CONDSTORE)]", command.name));
    co_return;
  }
  // QRESYNC (RFC 7162 section 3.2.5): (QRESYNC (uidvalidity modseq [known-uids])); the sequence match data
  // that may follow is a hint this server does without.
  std::optional<Resync> resync;
  if (parameters) {
    const std::vector<Value>& items = command.arguments[1].items;
    for (std::size_t i = 0; i < items.size(); ++i) {
      if (items[i].is_atom("CONDSTORE")) {
        condstore_ = true;
        continue;
      }
      if (items[i].is_atom("QRESYNC") && i + 1 < items.size()) {
        if (!qresync_) {
          tagged(command, "BAD", "QRESYNC is not enabled");
          co_return;
        }
        resync = parse_resync(items[++i]);
        if (!resync) {
          tagged(command, "BAD", "Syntax: QRESYNC (uidvalidity modseq [known-uids [(sequences uids)]])");
          co_return;
        }
        continue;
      }
      tagged(command, "BAD", fmt::format("Unknown {} parameter {}", command.name, items[i].text));
      co_return;
    }
  }
  // Selecting closes the mailbox selected before, even when the new one fails (RFC 3501 section 6.3.1); with
  // QRESYNC the client is told where the old mailbox's news ends (RFC 7162 section 3.2.11).
  if (state_ == State::selected && (qresync_ || rev2_)) untagged("OK [CLOSED] Previous mailbox closed");
  state_ = State::authenticated;
  messages_.clear();
  saved_.clear();
  const std::string& name = *selected;
  std::vector<sdk::MailboxInfo> mailboxes;
  std::shared_ptr<const Messages> messages;
  std::vector<std::uint32_t> vanished;
  sdk::MailStore& store = server_.store();
  const std::optional<std::string> failure = co_await server_.attempt([&] {
    mailboxes = store.list_mailboxes(client_.user);
    auto found = std::find_if(mailboxes.begin(), mailboxes.end(),
                              [&](const sdk::MailboxInfo& mailbox) { return mailbox.name == name; });
    if (found == mailboxes.end()) return;
    messages = lists_.get(client_.user, name, found->uidvalidity, found->highestmodseq,
                          [&] { return store.list_messages(client_.user, name); });
    if (resync && resync->uidvalidity == found->uidvalidity) {
      vanished = store.expunged_since(client_.user, name, resync->modseq);
    }
  });
  auto found = std::find_if(mailboxes.begin(), mailboxes.end(),
                            [&](const sdk::MailboxInfo& mailbox) { return mailbox.name == name; });
  if (failure || found == mailboxes.end() || !messages) {
    tagged(command, "NO", "[NONEXISTENT] No such mailbox");
    co_return;
  }
  mailbox_ = name;
  read_only_ = command.name == "EXAMINE";
  uidvalidity_ = found->uidvalidity;
  messages_ = MessageList(messages);
  listed_modseq_ = found->highestmodseq;
  state_ = State::selected;
  untagged("FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)");
  untagged(read_only_ ? "OK [PERMANENTFLAGS ()] Read-only mailbox"
                      : "OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted");
  untagged(fmt::format("{} EXISTS", messages_.size()));
  // IMAP4rev2 drops RECENT and wants the mailbox's name as the server spells it (RFC 9051 section 6.3.2).
  if (!rev2_) untagged("0 RECENT");
  if (rev2_) untagged(fmt::format("LIST () \"/\" {}", mailbox_text(mailbox_)));
  untagged(fmt::format("OK [UIDVALIDITY {}] UIDs valid", uidvalidity_));
  untagged(fmt::format("OK [UIDNEXT {}] Predicted next UID", found->uidnext));
  untagged(fmt::format("OK [HIGHESTMODSEQ {}] Highest", found->highestmodseq));
  if (resync && resync->uidvalidity == uidvalidity_) {
    // What changed since the client's last look: the UIDs it knew that went, then the messages changed since.
    // Only UIDs the client may know of, and none the list still holds: an expunge that came between the two
    // reads is told by the next refresh.
    std::erase_if(vanished, [&](std::uint32_t uid) {
      return (resync->known && !in_sequence_set(*resync->known, uid)) || messages_.contains_uid(uid);
    });
    if (!vanished.empty()) untagged(fmt::format("VANISHED (EARLIER) {}", compact_set(vanished)));
    for (std::size_t i = 0; i < messages_.size(); ++i) {
      const sdk::MessageEntry& message = messages_[i];
      if (message.modseq <= resync->modseq) continue;
      if (resync->known && !in_sequence_set(*resync->known, message.uid)) continue;
      untagged(fmt::format("{} FETCH (UID {} {})", i + 1, message.uid, flags_item(message)));
    }
  }
  tagged(command, "OK", fmt::format("[{}] {} completed", read_only_ ? "READ-ONLY" : "READ-WRITE", command.name));
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
