// LIST and LSUB (RFC 3501, with LIST-EXTENDED of RFC 5258, LIST-STATUS of RFC 5819 and the SPECIAL-USE selection
// of RFC 6154), NAMESPACE and STATUS: what the client learns of the user's mailboxes without selecting one.
#include <algorithm>

#include "imap_session.hpp"
#include "subscriptions.hpp"
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
  ListRequest request;
  request.lsub = command.name == "LSUB";
  if (!request.lsub && !arguments.empty() && arguments.front().kind == Value::Kind::list) {
    if (!list_selection(command, arguments.front(), request)) co_return;
    arguments.erase(arguments.begin());
  }
  if (!request.lsub && arguments.size() == 4 && arguments[2].is_atom("RETURN") &&
      arguments[3].kind == Value::Kind::list) {
    if (!list_return(command, arguments[3], request)) co_return;
    arguments.resize(2);
  }
  if (arguments.size() != 2 || !arguments[0].is_astring()) {
    tagged(command, "BAD", "Syntax: LIST [(options)] reference pattern [RETURN (options)]");
    co_return;
  }
  for (const Value& pattern :
       arguments[1].kind == Value::Kind::list ? arguments[1].items : std::vector<Value>{arguments[1]}) {
    const std::string joined = arguments[0].text + pattern.text;
    std::optional<std::string> decoded = rev2_ ? std::optional<std::string>(joined) : utf7_to_utf8(joined);
    if (!decoded) {
      tagged(command, "BAD", "Mailbox pattern is not valid modified UTF-7");
      co_return;
    }
    request.patterns.push_back(std::move(*decoded));
  }
  if (request.patterns.size() == 1 && arguments[1].text.empty() && arguments[1].kind != Value::Kind::list) {
    untagged(fmt::format("{} (\\Noselect) \"/\" \"\"", command.name));
    tagged(command, "OK", fmt::format("{} completed", command.name));
    co_return;
  }
  std::vector<sdk::MailboxInfo> mailboxes;
  std::optional<std::vector<std::string>> subscribed;
  const bool subscriptions = request.lsub || request.subscribed_only || request.return_subscribed;
  sdk::MailStore& store = server_.store();
  const std::optional<std::string> failure = co_await attempt([&] {
    mailboxes = store.mailboxes().list_mailboxes(client_.user);
    if (subscriptions) subscribed = load_subscriptions(store.state(), client_.user);
  });
  if (failure) {
    tagged(command, "NO", "[UNAVAILABLE] Mailboxes not available, try again");
    co_return;
  }
  if (!subscribed) {
    subscribed.emplace();
    for (const sdk::MailboxInfo& mailbox : mailboxes) subscribed->push_back(mailbox.name);
    std::sort(subscribed->begin(), subscribed->end());
  }
  for (const ListedName& listed : list_names(request, mailboxes, *subscribed)) {
    untagged(fmt::format("{} ({}) \"/\" {}{}", command.name, listed.attributes, mailbox_text(listed.name),
                         listed.child_subscribed ? " (\"CHILDINFO\" (\"SUBSCRIBED\"))" : ""));
    if (request.status_items && listed.mailbox) {
      const bool told = co_await list_status(command, *listed.mailbox, *request.status_items);
      if (!told) co_return;
    }
  }
  tagged(command, "OK", fmt::format("{} completed", command.name));
}

bool ImapSession::list_selection(const Command& command, const Value& options, ListRequest& request) {
  bool recursive = false;
  for (const Value& option : options.items) {
    if (option.is_atom("SPECIAL-USE")) {
      request.special_only = true;
    } else if (option.is_atom("SUBSCRIBED")) {
      request.subscribed_only = true;
    } else if (option.is_atom("RECURSIVEMATCH")) {
      recursive = true;
    } else if (!option.is_atom("REMOTE")) {  // REMOTE: every mailbox here is local
      tagged(command, "BAD", fmt::format("Unknown LIST selection option {}", option.text));
      return false;
    }
  }
  // RECURSIVEMATCH only qualifies SUBSCRIBED here (RFC 5258 section 3; RFC 6154 section 3 for SPECIAL-USE).
  if (recursive && (!request.subscribed_only || request.special_only)) {
    tagged(command, "BAD", "RECURSIVEMATCH goes with SUBSCRIBED alone");
    return false;
  }
  request.recursive = recursive;
  return true;
}

bool ImapSession::list_return(const Command& command, const Value& options, ListRequest& request) {
  const auto& items = options.items;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (items[i].is_atom("STATUS") && i + 1 < items.size() && items[i + 1].kind == Value::Kind::list) {
      request.status_items = items[++i];
    } else if (items[i].is_atom("SUBSCRIBED")) {
      request.return_subscribed = true;
    } else if (!items[i].is_atom("CHILDREN") && !items[i].is_atom("SPECIAL-USE")) {
      // CHILDREN and SPECIAL-USE attributes are always given.
      tagged(command, "BAD", fmt::format("Unknown LIST return option {}", items[i].text));
      return false;
    }
  }
  return true;
}

std::vector<ImapSession::ListedName> ImapSession::list_names(const ListRequest& request,
                                                             const std::vector<sdk::MailboxInfo>& mailboxes,
                                                             const std::vector<std::string>& subscribed) {
  const auto wanted = [&](const std::string& name) {
    return std::any_of(request.patterns.begin(), request.patterns.end(), [&](const std::string& pattern) {
      return matches(pattern, name) || (name == "INBOX" && matches(sdk::lower_ascii(pattern), "inbox"));
    });
  };
  const auto is_subscribed = [&](const std::string& name) {
    return std::binary_search(subscribed.begin(), subscribed.end(), name);
  };
  // The mailboxes in the store's order, then subscribed names without a mailbox, then (RECURSIVEMATCH) the
  // parents of subscribed names that have neither.
  std::vector<std::string> names;
  for (const sdk::MailboxInfo& mailbox : mailboxes) names.push_back(mailbox.name);
  const auto add = [&](const std::string& name) {
    if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  };
  if (request.lsub || request.subscribed_only) {
    for (const std::string& name : subscribed) add(name);
  }
  if (request.recursive) {
    for (const std::string& name : subscribed) {
      for (std::size_t slash = name.find('/'); slash != std::string::npos; slash = name.find('/', slash + 1)) {
        add(name.substr(0, slash));
      }
    }
  }
  std::vector<ListedName> listed;
  for (const std::string& name : names) {
    if (!wanted(name)) continue;
    const auto found = std::find_if(mailboxes.begin(), mailboxes.end(),
                                    [&](const sdk::MailboxInfo& mailbox) { return mailbox.name == name; });
    const sdk::MailboxInfo* mailbox = found == mailboxes.end() ? nullptr : &*found;
    const bool own = is_subscribed(name);
    // RFC 5258 section 3: a name that matches, with a subscribed child the patterns do not reach, says so.
    const bool child_subscribed =
        request.recursive && std::any_of(subscribed.begin(), subscribed.end(), [&](const std::string& child) {
          return child.starts_with(name + "/") && !wanted(child);
        });
    if ((request.lsub || request.subscribed_only) && !own && !child_subscribed) continue;
    if (!request.lsub && !request.subscribed_only && !mailbox) continue;
    if (request.special_only && (!mailbox || mailbox->special_use.empty())) continue;
    std::string attributes;
    if (mailbox) {
      const bool children = std::any_of(mailboxes.begin(), mailboxes.end(), [&](const sdk::MailboxInfo& other) {
        return other.name.starts_with(name + "/");
      });
      attributes = children ? "\\HasChildren" : "\\HasNoChildren";
      if (!mailbox->special_use.empty()) attributes += " " + mailbox->special_use;
    } else {
      // LSUB (RFC 3501) knows only \\Noselect; LIST-EXTENDED says why (RFC 5258 section 3.4).
      attributes = request.lsub ? "\\Noselect" : "\\NonExistent";
    }
    if (own && !request.lsub && (request.subscribed_only || request.return_subscribed)) attributes += " \\Subscribed";
    listed.push_back({name, mailbox, std::move(attributes), child_subscribed});
  }
  return listed;
}

sdk::Task<bool> ImapSession::list_status(const Command& command, const sdk::MailboxInfo& mailbox, const Value& items) {
  std::shared_ptr<const Messages> listed;
  std::uint32_t recent_from = 0;
  if (status_needs_store(items)) {
    sdk::MailStore& store = server_.store();
    const std::optional<std::string> unavailable = co_await attempt([&] {
      recent_from = recent_claims_.watermark(store.state(), client_.user, mailbox.name, mailbox.uidvalidity);
      if (!status_needs_list(items, mailbox, recent_from)) return;
      listed = lists_.get(store.mailboxes(), client_.user, mailbox.name, mailbox.uidvalidity, mailbox.highestmodseq);
    });
    if (unavailable) {
      tagged(command, "NO", "[UNAVAILABLE] Mailboxes not available, try again");
      co_return false;
    }
  }
  const std::optional<std::string> status = status_response(mailbox, items, listed.get(), recent_from);
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
                                                        const Messages* listed, std::uint32_t recent_from) const {
  std::string values;
  for (const Value& item : items.items) {
    std::string value;
    if (item.is_atom("MESSAGES")) value = fmt::format("MESSAGES {}", mailbox.messages);
    // The messages no session has taken as \\Recent yet: what the next SELECT would get. Without a list, the
    // watermark is at UIDNEXT already: none.
    if (item.is_atom("RECENT")) {
      const auto unclaimed = [&](const sdk::MessageEntry& message) { return message.uid >= recent_from; };
      value = fmt::format("RECENT {}", listed ? std::count_if(listed->begin(), listed->end(), unclaimed) : 0);
    }
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

bool ImapSession::status_needs_store(const Value& items) {
  return std::any_of(items.items.begin(), items.items.end(), [](const Value& item) {
    return item.is_atom("SIZE") || item.is_atom("DELETED") || item.is_atom("RECENT");
  });
}

bool ImapSession::status_needs_list(const Value& items, const sdk::MailboxInfo& mailbox, std::uint32_t recent_from) {
  return std::any_of(items.items.begin(), items.items.end(), [&](const Value& item) {
    return item.is_atom("SIZE") || item.is_atom("DELETED") || (item.is_atom("RECENT") && recent_from < mailbox.uidnext);
  });
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
  std::uint32_t recent_from = 0;
  sdk::MailStore& store = server_.store();
  const std::optional<std::string> failure = co_await attempt([&] {
    mailboxes = store.mailboxes().list_mailboxes(client_.user);
    auto found = std::find_if(mailboxes.begin(), mailboxes.end(),
                              [&](const sdk::MailboxInfo& mailbox) { return mailbox.name == *name; });
    if (found == mailboxes.end() || !status_needs_store(command.arguments[1])) return;
    recent_from = recent_claims_.watermark(store.state(), client_.user, *name, found->uidvalidity);
    if (status_needs_list(command.arguments[1], *found, recent_from)) {
      listed = lists_.get(store.mailboxes(), client_.user, *name, found->uidvalidity, found->highestmodseq);
    }
  });
  auto found = std::find_if(mailboxes.begin(), mailboxes.end(),
                            [&](const sdk::MailboxInfo& mailbox) { return mailbox.name == *name; });
  if (failure || found == mailboxes.end()) {
    tagged(command, "NO", "[NONEXISTENT] No such mailbox");
    co_return;
  }
  const std::optional<std::string> status = status_response(*found, command.arguments[1], listed.get(), recent_from);
  if (!status) {
    tagged(command, "BAD", "Unknown STATUS item");
    co_return;
  }
  untagged(*status);
  tagged(command, "OK", "STATUS completed");
}

}  // namespace tern::imap
