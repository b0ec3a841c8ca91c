// Mailbox management: CREATE, DELETE, RENAME, SUBSCRIBE and UNSUBSCRIBE.
#include <algorithm>

#include "imap_session.hpp"
#include "subscriptions.hpp"
#include "tern/sdk/text.hpp"

namespace tern::imap {
namespace {

bool valid_name(const std::optional<std::string>& name) {
  return name && !name->empty() && name->front() != '/' && name->find("//") == std::string::npos &&
         name->find_first_of("%*\r\n") == std::string::npos;
}

}  // namespace

sdk::Task<void> ImapSession::on_create(const Command& command) {
  const auto& arguments = command.arguments;
  const std::optional<std::string> created = arguments.empty() ? std::nullopt : mailbox_argument(arguments[0]);
  if (arguments.empty() || arguments.size() > 2 || !arguments[0].is_astring() || !valid_name(created)) {
    tagged(command, "BAD", "Syntax: CREATE mailbox [(USE (attribute))]");
    co_return;
  }
  // CREATE-SPECIAL-USE (RFC 6154 section 3): CREATE name (USE (\\Archive)), one attribute this server knows.
  std::string special_use;
  if (arguments.size() == 2) {
    const Value& parameters = arguments[1];
    const bool shaped = parameters.kind == Value::Kind::list && parameters.items.size() == 2 &&
                        parameters.items[0].is_atom("USE") && parameters.items[1].kind == Value::Kind::list;
    if (!shaped) {
      tagged(command, "BAD", "Syntax: CREATE mailbox [(USE (attribute))]");
      co_return;
    }
    static const char* kUses[] = {"\\Archive", "\\Drafts", "\\Junk", "\\Sent", "\\Trash"};
    for (const Value& use : parameters.items[1].items) {
      const auto known = std::find_if(std::begin(kUses), std::end(kUses), [&use](const char* name) {
        return sdk::lower_ascii(name) == sdk::lower_ascii(use.text);
      });
      if (known == std::end(kUses) || !special_use.empty()) {
        tagged(command, "NO", "[USEATTR] Only one of \\Archive, \\Drafts, \\Junk, \\Sent or \\Trash");
        co_return;
      }
      special_use = *known;
    }
  }
  const std::string& name = *created;
  sdk::MailStore& store = server_.store();
  const std::optional<std::string> failure =
      co_await attempt([&] { store.mailboxes().create_mailbox(client_.user, name, special_use); });
  if (failure) {
    tagged(command, "NO",
           name == "INBOX" || failure->find("exists") != std::string::npos
               ? "[ALREADYEXISTS] Mailbox exists already"
               : "[UNAVAILABLE] Mailbox not created, try again");
    co_return;
  }
  tagged(command, "OK", "CREATE completed");
}

sdk::Task<void> ImapSession::on_delete(const Command& command) {
  const std::optional<std::string> deleted =
      command.arguments.empty() ? std::nullopt : mailbox_argument(command.arguments[0]);
  if (command.arguments.size() != 1 || !command.arguments[0].is_astring() || !deleted) {
    tagged(command, "BAD", "Syntax: DELETE mailbox");
    co_return;
  }
  const std::string& name = *deleted;
  if (state_ == State::selected && name == mailbox_) {
    tagged(command, "NO", "[INUSE] Mailbox is selected; close it first");
    co_return;
  }
  sdk::MailStore& store = server_.store();
  const std::optional<std::string> failure =
      co_await attempt([&] { store.mailboxes().delete_mailbox(client_.user, name); });
  if (failure) {
    tagged(command, "NO", fmt::format("[CANNOT] {}", *failure));
    co_return;
  }
  tagged(command, "OK", "DELETE completed");
}

sdk::Task<void> ImapSession::on_rename(const Command& command) {
  const bool shaped =
      command.arguments.size() == 2 && command.arguments[0].is_astring() && command.arguments[1].is_astring();
  const std::optional<std::string> from = shaped ? mailbox_argument(command.arguments[0]) : std::nullopt;
  const std::optional<std::string> to = shaped ? mailbox_argument(command.arguments[1]) : std::nullopt;
  if (!from || !valid_name(to)) {
    tagged(command, "BAD", "Syntax: RENAME mailbox new-name");
    co_return;
  }
  sdk::MailStore& store = server_.store();
  if (*from == "INBOX") {
    // RFC 3501 section 6.3.5: renaming INBOX moves its messages to the new mailbox and leaves INBOX, empty.
    // Copied before they are removed, so a failure half-way duplicates and never loses.
    const std::optional<std::string> failure = co_await attempt([&] {
      store.mailboxes().create_mailbox(client_.user, *to, "");
      std::vector<std::int64_t> ids;
      for (const sdk::MessageEntry& message : store.mailboxes().list_messages(client_.user, "INBOX"))
        ids.push_back(message.id);
      if (ids.empty()) return;
      store.mailboxes().copy_messages(client_.user, ids, *to);
      store.mailboxes().remove_messages(client_.user, ids);
    });
    if (failure) {
      tagged(command, "NO", fmt::format("[CANNOT] {}", *failure));
      co_return;
    }
    server_.mailbox_changed({client_.user});
    tagged(command, "OK", "RENAME completed");
    co_return;
  }
  const std::optional<std::string> failure =
      co_await attempt([&] { store.mailboxes().rename_mailbox(client_.user, *from, *to); });
  if (failure) {
    tagged(command, "NO", fmt::format("[CANNOT] {}", *failure));
    co_return;
  }
  if (state_ == State::selected && (mailbox_ == *from || mailbox_.starts_with(*from + "/"))) {
    mailbox_ = *to + mailbox_.substr(from->size());
  }
  tagged(command, "OK", "RENAME completed");
}

sdk::Task<void> ImapSession::on_subscribe(const Command& command) {
  const std::optional<std::string> name = command.arguments.size() == 1 && command.arguments[0].is_astring()
                                              ? mailbox_argument(command.arguments[0])
                                              : std::nullopt;
  if (!name || name->find_first_of("\r\n") != std::string::npos) {
    tagged(command, "BAD", fmt::format("Syntax: {} mailbox", command.name));
    co_return;
  }
  // A name may be subscribed whether or not a mailbox has it (RFC 3501 section 6.3.6).
  sdk::MailStore& store = server_.store();
  const std::optional<std::string> failure = co_await attempt([&] {
    const std::vector<sdk::MailboxInfo> existing = store.mailboxes().list_mailboxes(client_.user);
    change_subscription(store.state(), client_.user, *name, command.name == "SUBSCRIBE", existing);
  });
  if (failure) {
    tagged(command, "NO", "[UNAVAILABLE] Subscriptions not available, try again");
    co_return;
  }
  tagged(command, "OK", fmt::format("{} completed", command.name));
}

sdk::Task<void> ImapSession::on_enable(const Command& command) {
  // RFC 5161: of the extensions that need enabling, this server has CONDSTORE, QRESYNC (which implies
  // CONDSTORE, RFC 7162 section 3.2.3) and IMAP4rev2. Each is named in ENABLED once, when it is turned on.
  std::string enabled;
  for (const Value& extension : command.arguments) {
    const bool qresync = extension.is_atom("QRESYNC");
    if ((extension.is_atom("CONDSTORE") || qresync) && !condstore_) {
      condstore_ = true;
      enabled += " CONDSTORE";
    }
    if (qresync && !qresync_) {
      qresync_ = true;
      enabled += " QRESYNC";
    }
    if (extension.is_atom("IMAP4REV2") && !rev2_) {
      rev2_ = true;
      enabled += " IMAP4rev2";
    }
  }
  untagged("ENABLED" + enabled);
  tagged(command, "OK", "ENABLE completed");
  co_return;
}

}  // namespace tern::imap
