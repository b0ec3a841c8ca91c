#include "intake.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <optional>

#include "deliver_stage.hpp"
#include "message_context.hpp"
#include "tern/sdk/address.hpp"
#include "tern/sdk/header.hpp"

namespace tern::intake {
namespace {

using Status = Outcome::Status;

Outcome answer(Status status, int code, const char* enhanced, std::string text) {
  Outcome outcome;
  outcome.status = status;
  outcome.reply = code >= 500 ? sdk::Verdict::reject(code, enhanced, std::move(text))
                              : sdk::Verdict::defer(code, enhanced, std::move(text));
  return outcome;
}

Outcome refused_by(const sdk::Verdict& verdict, sdk::Stage stage) {
  Outcome outcome;
  outcome.status = Status::refused;
  outcome.reply = verdict;
  outcome.refused_at = stage;
  return outcome;
}

// The part of a received message where this server's marks may show: from its topmost Received field on. Above
// it sit the last hop's own fields (a mailbox provider's final delivery writes Return-Path and a Delivered-To
// naming the user it delivered to), which are no sign that the message passed here before.
std::string_view marks_of(std::string_view message) {
  std::string_view found;
  sdk::visit_header_fields(message, [&](const sdk::HeaderField& field) {
    if (!sdk::same_ascii(field.name, "Received")) return false;
    found = message.substr(static_cast<std::size_t>(field.text.data() - message.data()));
    return true;
  });
  return found;
}

// A message that went round too often is refused, whatever caused the loop (RFC 5321 section 6.3); so is one
// that already passed an alias that would forward it again.
std::optional<Outcome> loop_refusal(const Incoming& incoming) {
  if (sdk::count_header_fields(incoming.message, "Received") > kMaxHops) {
    return answer(Status::refused, 554, "5.4.6", "Too many hops: the message is looping");
  }
  for (const std::string& alias : incoming.destinations.aliases) {
    if (sdk::has_header_value(incoming.message, "Delivered-To", alias)) {
      return answer(Status::refused, 554, "5.4.6", fmt::format("Mail forwarding loop for <{}>", alias));
    }
  }
  return std::nullopt;
}

// What `message` hooks changed in the envelope, applied: every recipient's destinations are found again. False
// when the directory could not be read.
sdk::Task<bool> apply_envelope_changes(sdk::ServerContext& server, const MessageContext& hooks, Incoming& incoming) {
  sdk::Envelope& envelope = incoming.envelope;
  if (hooks.new_sender()) envelope.sender = *hooks.new_sender();
  if (hooks.removed_recipients().empty() && hooks.added_recipients().empty()) co_return true;
  std::vector<sdk::Recipient> recipients;
  for (sdk::Recipient& recipient : envelope.recipients) {
    const bool removed =
        std::any_of(hooks.removed_recipients().begin(), hooks.removed_recipients().end(),
                    [&](const std::string& address) { return sdk::same_ascii(address, recipient.address); });
    if (!removed) recipients.push_back(std::move(recipient));
  }
  for (const std::string& address : hooks.added_recipients()) recipients.push_back({address, {}, {}});
  std::vector<Resolution> resolutions(recipients.size());
  sdk::Directory& directory = server.store().directory();
  const std::string hostname(server.hostname());
  const std::optional<std::string> failure = co_await server.attempt([&] {
    for (std::size_t i = 0; i < recipients.size(); ++i) resolutions[i] = resolve(directory, hostname, recipients[i]);
  });
  if (failure) {
    server.log().error(fmt::format("message {}: recipient lookup failed: {}", incoming.name, *failure));
    co_return false;
  }
  envelope.recipients.clear();
  incoming.destinations = {};
  for (std::size_t i = 0; i < recipients.size(); ++i) {
    if (resolutions[i].nobody()) {
      server.log().warn(fmt::format("a hook added <{}>, which nobody receives: skipped", recipients[i].address));
      continue;
    }
    incoming.destinations.add(recipients[i], resolutions[i]);
    envelope.recipients.push_back(std::move(recipients[i]));
  }
  co_return true;
}

// The message as filed: the protocol's trace field, the fields hooks added, a Delivered-To for each alias that
// forwards it (so that it is known when it comes back), the protocol's own fields, then the message as hooks left
// it.
std::string compose(const Incoming& incoming, const MessageContext& hooks) {
  std::string stored = incoming.received_field + hooks.added_headers();
  for (const std::string& alias : incoming.destinations.aliases) stored += fmt::format("Delivered-To: {}\r\n", alias);
  const std::string_view content = hooks.message();
  if (incoming.extra_fields) stored += incoming.extra_fields(content);
  stored += content;
  return stored;
}

// The quotas, now that the size is known: when no recipient, local or remote, could take the message, it is
// refused; when some can, all get it, as one answer serves every recipient and a bounce for a few would be worse
// than a full mailbox. Reads the store: call it off the loop.
std::optional<Outcome> over_quota(sdk::Mailboxes& mailboxes, const Destinations& destinations, std::size_t size) {
  if (!destinations.remote.empty() || destinations.users.empty()) return std::nullopt;
  bool any_room = false;
  bool ever_fits = false;
  for (const std::string& user : destinations.users) {
    const sdk::QuotaInfo quota = mailboxes.quota(user);
    ever_fits = ever_fits || quota.could_hold(size);
    any_room = any_room || quota.room_for(size, 1);
  }
  if (any_room) return std::nullopt;
  // RFC 3463: 4.2.2 while the mailbox is full (it may empty), 5.2.2 when the message could never fit.
  return ever_fits ? answer(Status::over_quota, 452, "4.2.2", "Mailbox full, try again later")
                   : answer(Status::over_quota, 552, "5.2.2", "Message is larger than the mailbox's quota");
}

// Files the message and what the `deliver` hooks decided, in one commit.
sdk::Task<Outcome> commit(sdk::ServerContext& server, const Incoming& incoming, const Decisions& decisions,
                          std::string stored) {
  sdk::Intake intake;
  intake.filings = decisions.filings;
  intake.sender = incoming.envelope.sender;
  intake.remote = incoming.destinations.remote;
  intake.ret = incoming.envelope.ret;
  intake.envid = incoming.envelope.envid;
  intake.smtputf8 = incoming.envelope.smtputf8;
  intake.state = incoming.state;
  sdk::MailStore& store = server.store();
  std::optional<Outcome> refusal;
  std::optional<std::string> disk_full;
  const std::optional<std::string> failure = co_await server.attempt([&] {
    if (incoming.origin == Origin::received)
      refusal = over_quota(store.mailboxes(), incoming.destinations, stored.size());
    if (refusal) return;
    add_redirects(store.directory(), decisions, intake);
    try {
      store.receive(stored, intake);
    } catch (const sdk::StoreFull& full) {
      disk_full = full.what();
    }
  });
  if (refusal && !failure) co_return *refusal;
  if (disk_full) {
    server.log().error(fmt::format("storing message {} failed, no space: {}", incoming.name, *disk_full));
    co_return answer(Status::store_full, 452, "4.3.1", "Insufficient system storage, try again later");
  }
  if (failure) {
    server.log().error(fmt::format("storing message {} failed: {}", incoming.name, *failure));
    co_return answer(Status::failed, 451, "4.3.0", "Temporary failure storing the message, try again later");
  }
  Outcome outcome;
  outcome.status = Status::stored;
  for (const sdk::Filing& filing : intake.filings) outcome.users.push_back(filing.user);
  for (const sdk::Recipient& recipient : intake.remote) outcome.remote.push_back(recipient.address);
  outcome.stored = std::move(stored);
  co_return outcome;
}

// A message every copy of which a hook dropped: only its state is written.
sdk::Task<Outcome> discard(sdk::ServerContext& server, const Incoming& incoming) {
  server.log().info(fmt::format("message {} discarded by a hook", incoming.name));
  sdk::Intake intake;
  intake.state = incoming.state;
  sdk::MailStore& store = server.store();
  std::optional<std::string> failure;
  if (!intake.state.empty()) failure = co_await server.attempt([&] { store.receive("", intake); });
  if (failure) {
    server.log().error(fmt::format("message {}: writing its state failed: {}", incoming.name, *failure));
    co_return answer(Status::failed, 451, "4.3.0", "Temporary failure storing the message, try again later");
  }
  Outcome outcome;
  outcome.status = Status::discarded;
  co_return outcome;
}

// What follows a durable commit: the sessions watching those mailboxes are woken, the log says where it went, and
// the `queued` hooks run (received mail only).
sdk::Task<void> announce(sdk::ServerContext& server, const Incoming& incoming, const Outcome& outcome,
                         std::string_view folder) {
  server.mailbox_changed(outcome.users);
  std::vector<std::string> destinations = outcome.users;
  for (const std::string& address : outcome.remote) destinations.push_back("queue:" + address);
  server.log().info(fmt::format("message {} from <{}> stored for {} ({} octets{})", incoming.name,
                                incoming.envelope.sender, fmt::join(destinations, ", "), outcome.stored.size(),
                                folder == "INBOX" ? "" : fmt::format(", in {}", folder)));
  if (incoming.origin != Origin::received) co_return;
  server.count("messages_received", 1);
  MessageContext queued(sdk::Stage::queued, incoming.client, incoming.envelope, outcome.stored);
  co_await server.run_hooks(sdk::Stage::queued, queued);
}

}  // namespace

sdk::Task<Outcome> receive(sdk::ServerContext& server, Incoming incoming) {
  const bool received = incoming.origin == Origin::received;
  MessageContext hooks(sdk::Stage::message, incoming.client, incoming.envelope, incoming.message);
  sdk::Verdict verdict;
  if (received) {
    const sdk::Verdict answered = co_await server.run_hooks(sdk::Stage::message, hooks);
    if (answered.refuses()) co_return refused_by(answered, sdk::Stage::message);
    verdict = incoming.early_verdict.decided() ? incoming.early_verdict : answered;
    const bool applied = co_await apply_envelope_changes(server, hooks, incoming);
    if (!applied) co_return answer(Status::failed, 451, "4.3.0", "Temporary lookup failure, try again later");
  }
  if (verdict.kind == sdk::VerdictKind::discard) {
    Outcome dropped = co_await discard(server, incoming);
    co_return dropped;
  }
  if (received) {
    if (std::optional<Outcome> loop = loop_refusal(incoming)) co_return std::move(*loop);
  }
  std::string stored = received ? compose(incoming, hooks) : incoming.message;
  const std::string folder = verdict.kind == sdk::VerdictKind::quarantine ? verdict.folder : incoming.folder;
  // `deliver`, once per local user: where their copy goes and with which flags, and who else gets one.
  const std::string_view marks = received ? marks_of(incoming.message) : std::string_view(incoming.message);
  const Decisions decisions = co_await decide(server, incoming.client, incoming.envelope, incoming.destinations.users,
                                              stored, marks, folder, incoming.name);
  if (decisions.refusal) co_return refused_by(*decisions.refusal, sdk::Stage::deliver);
  stored.insert(0, decisions.redirected_by);
  Outcome outcome = co_await commit(server, incoming, decisions, std::move(stored));
  if (outcome.status != Status::stored) co_return outcome;
  co_await announce(server, incoming, outcome, folder);
  co_return outcome;
}

}  // namespace tern::intake
