// QUOTA (RFC 9208): every mailbox of a user has one quota root, "", with the STORAGE (in units of 1024 octets)
// and MESSAGE resources the administrator set with `tern user quota`. Users read it; only the administrator
// changes it, so SETQUOTA is refused and QUOTASET not advertised.
#include "imap_session.hpp"

namespace tern::imap {

std::string ImapSession::quota_response(const sdk::QuotaInfo& quota) {
  std::string resources;
  const auto add = [&resources](std::string_view name, std::uint64_t used, std::uint64_t limit) {
    resources += fmt::format("{}{} {} {}", resources.empty() ? "" : " ", name, used, limit);
  };
  // Usage is rounded up and the limit down, so a full mailbox never shows room left.
  if (quota.storage_limit != 0) add("STORAGE", (quota.storage_used + 1023) / 1024, quota.storage_limit / 1024);
  if (quota.messages_limit != 0) add("MESSAGE", quota.messages_used, quota.messages_limit);
  return fmt::format("QUOTA \"\" ({})", resources);
}

sdk::Task<void> ImapSession::on_getquotaroot(const Command& command) {
  const std::optional<std::string> mailbox = command.arguments.size() == 1 && command.arguments[0].is_astring()
                                                 ? mailbox_argument(command.arguments[0])
                                                 : std::nullopt;
  if (!mailbox) {
    tagged(command, "BAD", "Syntax: GETQUOTAROOT mailbox");
    co_return;
  }
  const std::string& name = *mailbox;
  sdk::QuotaInfo quota;
  std::optional<sdk::MailboxState> exists;
  sdk::MailStore& store = server_.store();
  const std::optional<std::string> failure = co_await attempt([&] {
    exists = store.mailboxes().mailbox_state(client_.user, name);
    quota = store.mailboxes().quota(client_.user);
  });
  if (failure) {
    tagged(command, "NO", "[UNAVAILABLE] Quota not available, try again");
    co_return;
  }
  if (!exists) {
    tagged(command, "NO", "[NONEXISTENT] No such mailbox");
    co_return;
  }
  // A user without limits has no quota root at all.
  const bool limited = quota.limited();
  untagged(fmt::format("QUOTAROOT {}{}", mailbox_text(name), limited ? " \"\"" : ""));
  if (limited) untagged(quota_response(quota));
  tagged(command, "OK", "GETQUOTAROOT completed");
}

sdk::Task<void> ImapSession::on_getquota(const Command& command) {
  if (command.arguments.size() != 1 || !command.arguments[0].is_astring()) {
    tagged(command, "BAD", "Syntax: GETQUOTA root");
    co_return;
  }
  sdk::QuotaInfo quota;
  sdk::MailStore& store = server_.store();
  const std::optional<std::string> failure = co_await attempt([&] { quota = store.mailboxes().quota(client_.user); });
  if (failure) {
    tagged(command, "NO", "[UNAVAILABLE] Quota not available, try again");
    co_return;
  }
  if (!command.arguments[0].text.empty() || !quota.limited()) {
    tagged(command, "NO", "[NONEXISTENT] No such quota root");
    co_return;
  }
  untagged(quota_response(quota));
  tagged(command, "OK", "GETQUOTA completed");
}

sdk::Task<void> ImapSession::on_setquota(const Command& command) {
  tagged(command, "NO", "[NOPERM] Quotas are set by the administrator");
  co_return;
}

}  // namespace tern::imap
