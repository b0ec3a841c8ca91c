// LIST and LSUB (RFC 3501, with LIST-EXTENDED of RFC 5258, LIST-STATUS of RFC 5819 and the SPECIAL-USE selection
// of RFC 6154), NAMESPACE and STATUS: what the client learns of the user's mailboxes without selecting one.
#include <algorithm>

#include "imap_session.hpp"
#include "tern/sdk/text.hpp"

namespace tern::imap {
namespace {

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
      co_await server_.attempt([&] { mailboxes = store.mailboxes().list_mailboxes(client_.user); });
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
      const bool told = co_await list_status(command, mailbox, *status_items);
      if (!told) co_return;
    }
  }
  tagged(command, "OK", fmt::format("{} completed", command.name));
}

sdk::Task<bool> ImapSession::list_status(const Command& command, const sdk::MailboxInfo& mailbox, const Value& items) {
  std::shared_ptr<const Messages> listed;
  if (status_needs_list(items)) {
    sdk::Mailboxes& mailboxes = server_.store().mailboxes();
    const std::optional<std::string> unavailable = co_await server_.attempt([&] {
      listed = lists_.get(client_.user, mailbox.name, mailbox.uidvalidity, mailbox.highestmodseq,
                          [&] { return mailboxes.list_messages(client_.user, mailbox.name); });
    });
    if (unavailable) {
      tagged(command, "NO", "[UNAVAILABLE] Mailboxes not available, try again");
      co_return false;
    }
  }
  const std::optional<std::string> status = status_response(mailbox, items, listed.get());
  if (!status) {
    tagged(command, "BAD", "Unknown STATUS item");
    co_return false;
  }
  untagged(*status);
  co_return true;
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
    mailboxes = store.mailboxes().list_mailboxes(client_.user);
    auto found = std::find_if(mailboxes.begin(), mailboxes.end(),
                              [&](const sdk::MailboxInfo& mailbox) { return mailbox.name == *name; });
    if (found != mailboxes.end() && status_needs_list(command.arguments[1])) {
      listed = lists_.get(client_.user, *name, found->uidvalidity, found->highestmodseq,
                          [&] { return store.mailboxes().list_messages(client_.user, *name); });
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

}  // namespace tern::imap
