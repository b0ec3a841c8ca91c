// The SMTP mail transaction: MAIL (with SIZE, BODY, SMTPUTF8 and DSN parameters), RCPT, DATA and BDAT, up to
// the durable store.
#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <random>

#include "deliver_stage.hpp"
#include "smtp_hook_context.hpp"
#include "smtp_session.hpp"
#include "smtp_syntax.hpp"
#include "tern/sdk/address.hpp"
#include "tern/sdk/header.hpp"

namespace tern::smtp {
namespace {

constexpr std::size_t kTextLineLimit = 1000;  // RFC 5321 section 4.5.3.1.6, CRLF included
constexpr std::size_t kEnvidLimit = 100;      // RFC 3461 section 4.4

std::optional<std::size_t> parse_size(std::string_view text) {
  if (text.empty() || text.size() > 19) return std::nullopt;
  std::size_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<std::size_t>(c - '0');
  }
  return value;
}

bool duplicate_parameters(const PathArgument& path) {
  for (std::size_t i = 0; i < path.parameters.size(); ++i) {
    for (std::size_t j = i + 1; j < path.parameters.size(); ++j) {
      if (path.parameters[i].first == path.parameters[j].first) return true;
    }
  }
  return false;
}

}  // namespace

sdk::Task<bool> SmtpSession::sender_allowed(const std::string& sender) {
  if (settings_.allow_any_sender || lower_ascii(sender) == client_.user) co_return true;
  if (sender.empty()) co_return false;
  std::vector<std::string> owners;
  sdk::MailStore& store = server_.store();
  const std::optional<std::string> failure =
      co_await server_.attempt([&] { owners = store.resolve_recipient(sender); });
  co_return !failure && std::find(owners.begin(), owners.end(), client_.user) != owners.end();
}

sdk::Task<void> SmtpSession::on_mail(std::string_view argument) {
  if (client_.helo.empty()) {
    error(503, "5.5.1", "Send HELO or EHLO first");
    co_return;
  }
  if (envelope_) {
    error(503, "5.5.1", "Sender already given");
    co_return;
  }
  if (role_ == Role::submission && client_.user.empty()) {
    const bool needs_tls = !connection_.tls_active() && !listener_.allow_plaintext_auth;
    error(530, "5.7.0", needs_tls ? "Must issue a STARTTLS command first" : "Authentication required");
    co_return;
  }
  std::optional<PathArgument> path = parse_path_argument(argument, "FROM");
  if (!path) {
    error(501, "5.5.4", "Syntax: MAIL FROM:<address>");
    co_return;
  }
  if (!extended_ && !path->parameters.empty()) {
    error(555, "5.5.4", "MAIL parameters need EHLO");
    co_return;
  }
  if (duplicate_parameters(*path)) {
    error(501, "5.5.4", "A parameter is given twice");
    co_return;
  }
  sdk::Envelope envelope;
  envelope.sender = path->address;
  for (const auto& [name, value] : path->parameters) {
    if (name == "SIZE") {
      std::optional<std::size_t> size = parse_size(value);
      if (!size) {
        error(501, "5.5.4", "Syntax: SIZE=<octets>");
        co_return;
      }
      if (*size > settings_.max_message_size) {
        reply(552, "5.3.4", "Message size exceeds fixed maximum message size");
        co_return;
      }
      declared_size_ = *size;
    } else if (name == "BODY" && (lower_ascii(value) == "7bit" || lower_ascii(value) == "8bitmime")) {
      envelope.eight_bit = lower_ascii(value) == "8bitmime";
    } else if (name == "SMTPUTF8" && value.empty()) {
      envelope.smtputf8 = true;
    } else if (name == "RET" && (lower_ascii(value) == "full" || lower_ascii(value) == "hdrs")) {
      envelope.ret = lower_ascii(value) == "full" ? "FULL" : "HDRS";
    } else if (name == "ENVID") {
      std::optional<std::string> envid = decode_xtext(value);
      if (!envid || value.empty() || value.size() > kEnvidLimit) {
        error(501, "5.5.4", "Syntax: ENVID=<xtext>, 100 characters at most");
        co_return;
      }
      envelope.envid = std::move(*envid);
    } else {
      error(555, "5.5.4", fmt::format("Unsupported parameter {}", name));
      co_return;
    }
  }
  if (!envelope.smtputf8 && !is_ascii(envelope.sender)) {
    error(553, "5.6.7", "Non-ASCII address needs SMTPUTF8");
    co_return;
  }
  if (role_ == Role::submission) {
    const bool allowed = co_await sender_allowed(envelope.sender);
    if (!allowed) {
      error(553, "5.7.1", fmt::format("<{}>: Sender address not owned by {}", envelope.sender, client_.user));
      co_return;
    }
  }
  SmtpHookContext context(sdk::Stage::mail, client_, &envelope);
  const sdk::Verdict verdict = co_await server_.run_hooks(sdk::Stage::mail, context);
  if (verdict.refuses()) {
    reply_verdict(verdict);
    co_return;
  }
  envelope_ = std::move(envelope);
  reply(250, "2.1.0", "Sender OK");
}

sdk::Task<void> SmtpSession::on_rcpt(std::string_view argument) {
  if (!envelope_) {
    error(503, "5.5.1", "Need MAIL before RCPT");
    co_return;
  }
  if (chunking_) {
    error(503, "5.5.1", "RCPT not allowed during BDAT");
    co_return;
  }
  std::optional<PathArgument> path = parse_path_argument(argument, "TO");
  if (!path) {
    error(501, "5.5.4", "Syntax: RCPT TO:<address>");
    co_return;
  }
  if (duplicate_parameters(*path)) {
    error(501, "5.5.4", "A parameter is given twice");
    co_return;
  }
  sdk::Recipient recipient{path->address, {}, {}};
  for (const auto& [name, value] : path->parameters) {
    if (name == "NOTIFY" && extended_) {
      std::optional<std::string> notify = parse_notify(value);
      if (!notify) {
        error(501, "5.5.4", "Syntax: NOTIFY=NEVER or NOTIFY=SUCCESS,FAILURE,DELAY");
        co_return;
      }
      recipient.notify = std::move(*notify);
    } else if (name == "ORCPT" && extended_) {
      std::optional<std::string> orcpt = parse_orcpt(value);
      if (!orcpt) {
        error(501, "5.5.4", "Syntax: ORCPT=<type>;<xtext>");
        co_return;
      }
      recipient.orcpt = std::move(*orcpt);
    } else {
      error(555, "5.5.4", fmt::format("Unsupported parameter {}", name));
      co_return;
    }
  }
  if (!envelope_->smtputf8 && !is_ascii(recipient.address)) {
    error(553, "5.6.7", "Non-ASCII address needs SMTPUTF8");
    co_return;
  }
  if (envelope_->recipients.size() >= settings_.max_recipients) {
    reply(452, "4.5.3", "Too many recipients");
    co_return;
  }
  Destinations destinations;
  enum class QuotaRefusal { none, full, too_big } over_quota = QuotaRefusal::none;
  sdk::MailStore& store = server_.store();
  const std::optional<std::string> failure = co_await server_.attempt([&] {
    destinations = find_destinations(recipient);
    for (const std::string& user : destinations.users) {
      const sdk::QuotaInfo quota = store.quota(user);
      if (!quota.could_hold(declared_size_)) {
        over_quota = QuotaRefusal::too_big;
      } else if (!quota.room_for(std::max<std::uint64_t>(declared_size_, 1), 1)) {
        over_quota = std::max(over_quota, QuotaRefusal::full);
      }
    }
  });
  const bool local = destinations.local;
  const std::string& address = recipient.address;
  if (failure) {
    server_.log().error(fmt::format("recipient lookup failed: {}", *failure));
    reply(451, "4.3.0", "Temporary lookup failure, try again later");
    co_return;
  }
  // Only authenticated users and the configured relay networks may send to other domains (no open relay),
  // except to the domains this server relays for (a backup MX, a part-time domain held for ETRN).
  const bool may_relay = !client_.user.empty() || settings_.relay_networks.contains(client_.address) ||
                         settings_.relay_domains.contains(sdk::domain_of(address));
  if (!local && !may_relay) {
    error(554, "5.7.1", fmt::format("<{}>: Relay access denied", address));
    co_return;
  }
  if (local && destinations.users.empty() && destinations.expansion.forwards.empty()) {
    error(550, "5.1.1", fmt::format("<{}>: Recipient address rejected: User unknown", address));
    co_return;
  }
  // RFC 3463: 4.2.2 while the mailbox is full (it may empty), 5.2.2 when the announced message could never fit.
  if (over_quota == QuotaRefusal::too_big) {
    reply(552, "5.2.2", fmt::format("<{}>: Message is larger than the mailbox's quota", address));
    co_return;
  }
  if (over_quota == QuotaRefusal::full) {
    reply(452, "4.2.2", fmt::format("<{}>: Mailbox full, try again later", address));
    co_return;
  }
  SmtpHookContext context(sdk::Stage::rcpt, client_, &*envelope_);
  context.set_recipient(address);
  const sdk::Verdict verdict = co_await server_.run_hooks(sdk::Stage::rcpt, context);
  if (verdict.refuses()) {
    reply_verdict(verdict);
    co_return;
  }
  add_destinations(std::move(recipient), std::move(destinations));
  reply(250, "2.1.5", "Recipient OK");
}

SmtpSession::Destinations SmtpSession::find_destinations(sdk::Recipient& recipient) const {
  sdk::MailStore& store = server_.store();
  Destinations found;
  if (recipient.address == "postmaster") {
    // The server's own domain's postmaster, else the first local domain that has one.
    std::vector<std::string> domains{lower_ascii(server_.hostname())};
    for (std::string& domain : store.list_domains()) domains.push_back(std::move(domain));
    for (const std::string& domain : domains) {
      found.users = store.resolve_recipient("postmaster@" + domain);
      if (!found.users.empty()) {
        recipient.address = "postmaster@" + domain;
        break;
      }
    }
    found.local = true;
    return found;
  }
  found.local = store.is_local_domain(sdk::domain_of(recipient.address));
  if (found.local) {
    found.expansion = store.expand_recipient(recipient.address);
    found.users = found.expansion.local_users;
  }
  return found;
}

void SmtpSession::add_destinations(sdk::Recipient recipient, Destinations destinations) {
  if (!destinations.local) remote_.push_back(recipient);
  // Forwarded by an alias: queued for the outside address, with the DSN request and original recipient of
  // the address the client gave (RFC 3461 section 5.2.1).
  const sdk::RecipientExpansion& expansion = destinations.expansion;
  for (const std::string& forward : expansion.forwards) {
    const bool queued = std::any_of(remote_.begin(), remote_.end(),
                                    [&](const sdk::Recipient& r) { return lower_ascii(r.address) == forward; });
    if (!queued) {
      remote_.push_back(
          {forward, recipient.notify, recipient.orcpt.empty() ? "rfc822;" + recipient.address : recipient.orcpt});
    }
  }
  for (const std::string& alias : expansion.aliases) {
    if (!expansion.forwards.empty() && std::find(aliases_.begin(), aliases_.end(), alias) == aliases_.end()) {
      aliases_.push_back(alias);
    }
  }
  envelope_->recipients.push_back(std::move(recipient));
  for (std::string& user : destinations.users) {
    if (std::find(local_users_.begin(), local_users_.end(), user) == local_users_.end()) {
      local_users_.push_back(std::move(user));
    }
  }
}

sdk::Task<bool> SmtpSession::apply_envelope_changes(const SmtpHookContext& context) {
  if (context.new_sender()) envelope_->sender = *context.new_sender();
  if (context.removed_recipients().empty() && context.added_recipients().empty()) co_return true;
  std::vector<sdk::Recipient> recipients;
  for (sdk::Recipient& recipient : envelope_->recipients) {
    const bool removed =
        std::any_of(context.removed_recipients().begin(), context.removed_recipients().end(),
                    [&](const std::string& address) { return lower_ascii(address) == lower_ascii(recipient.address); });
    if (!removed) recipients.push_back(std::move(recipient));
  }
  for (const std::string& address : context.added_recipients()) recipients.push_back({address, {}, {}});
  std::vector<Destinations> destinations(recipients.size());
  const std::optional<std::string> failure = co_await server_.attempt([&] {
    for (std::size_t i = 0; i < recipients.size(); ++i) destinations[i] = find_destinations(recipients[i]);
  });
  if (failure) {
    server_.log().error(fmt::format("recipient lookup failed: {}", *failure));
    reply(451, "4.3.0", "Temporary lookup failure, try again later");
    co_return false;
  }
  envelope_->recipients.clear();
  local_users_.clear();
  remote_.clear();
  aliases_.clear();
  for (std::size_t i = 0; i < recipients.size(); ++i) {
    if (destinations[i].local && destinations[i].users.empty() && destinations[i].expansion.forwards.empty()) {
      server_.log().warn(fmt::format("a hook added <{}>, which nobody receives: skipped", recipients[i].address));
      continue;
    }
    add_destinations(std::move(recipients[i]), std::move(destinations[i]));
  }
  co_return true;
}

sdk::Task<bool> SmtpSession::start_message() {
  SmtpHookContext context(sdk::Stage::data, client_, &*envelope_);
  const sdk::Verdict verdict = co_await server_.run_hooks(sdk::Stage::data, context);
  if (verdict.refuses()) {
    reply_verdict(verdict);
    co_return false;
  }
  // A discard or quarantine decided before the body arrives still applies to it.
  if (verdict.kind == sdk::VerdictKind::discard || verdict.kind == sdk::VerdictKind::quarantine) {
    data_decision_ = verdict;
  }
  co_return true;
}

sdk::Task<bool> SmtpSession::read_data(std::string& message, std::string& problem) {
  DataReader reader(settings_.max_message_size);
  std::string line;
  for (;;) {
    const sdk::ReadStatus status = co_await connection_.read_line(line, kTextLineLimit);
    if (status != sdk::ReadStatus::ok && status != sdk::ReadStatus::too_long) co_return false;
    if (reader.add(line, status == sdk::ReadStatus::too_long)) break;
  }
  message = std::move(reader.message());
  problem = reader.problem();
  co_return true;
}

sdk::Task<void> SmtpSession::on_data(std::string_view argument) {
  if (!argument.empty()) {
    error(501, "5.5.4", "Syntax: DATA");
    co_return;
  }
  if (!envelope_) {
    error(503, "5.5.1", "Need MAIL before DATA");
    co_return;
  }
  if (chunking_) {
    error(503, "5.5.1", "DATA not allowed after BDAT");
    co_return;
  }
  if (envelope_->recipients.empty()) {
    error(554, "5.5.1", "No valid recipients");
    co_return;
  }
  const bool started = co_await start_message();
  if (!started) co_return;
  reply(354, "", "End data with <CR><LF>.<CR><LF>");
  co_await flush();
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
    pending_ += problem + "\r\n";
    co_return;
  }
  co_await store_message(std::move(message));
  reset_transaction();
}

sdk::Task<bool> SmtpSession::read_chunk(std::size_t size, bool keep) {
  if (keep) {
    const sdk::ReadStatus status = co_await connection_.read_bytes(chunks_, size);
    co_return status == sdk::ReadStatus::ok;
  }
  std::string scratch;
  while (size > 0) {
    const std::size_t piece = std::min<std::size_t>(size, 64 * 1024);
    scratch.clear();
    const sdk::ReadStatus status = co_await connection_.read_bytes(scratch, piece);
    if (status != sdk::ReadStatus::ok) co_return false;
    size -= piece;
  }
  co_return true;
}

sdk::Task<void> SmtpSession::on_bdat(std::string_view argument) {
  // RFC 3030: the chunk's octets follow the command whatever the answer, so they are always read.
  auto [size_text, last_text] = split_command(argument);
  std::optional<std::size_t> size = parse_size(size_text);
  const bool last = last_text == "LAST";
  if (!size || !(last_text.empty() || last)) {
    // The chunk's length is unknown, so the rest of the stream cannot be read as commands.
    reply(501, "5.5.4", "Syntax: BDAT <octets> [LAST]");
    closing_ = true;
    co_return;
  }
  bool refused = chunks_refused_ || !envelope_ || envelope_->recipients.empty();
  if (!refused && !chunking_) {
    chunking_ = true;
    const bool started = co_await start_message();
    if (!started) {
      chunks_refused_ = true;
      refused = true;
      // start_message() answered; the chunk is still read below.
      const bool read = co_await read_chunk(*size, false);
      if (!read) closing_ = true;
      if (last) reset_transaction();
      co_return;
    }
  }
  chunked_size_ += *size;
  const bool oversized = chunked_size_ > settings_.max_message_size;
  const bool read = co_await read_chunk(*size, !refused && !oversized);
  if (!read) {
    closing_ = true;
    co_return;
  }
  if (refused) {
    error(503, "5.5.1",
          envelope_ && !envelope_->recipients.empty() ? "Transaction failed, send RSET"
                                                      : "Need MAIL and RCPT before BDAT");
    if (last) reset_transaction();
    co_return;
  }
  if (oversized) {
    chunks_.clear();
    if (last) {
      reset_transaction();
      reply(552, "5.3.4", "Message size exceeds fixed maximum message size");
    } else {
      reply(250, "2.0.0", fmt::format("{} octets received", *size));
    }
    co_return;
  }
  if (!last) {
    reply(250, "2.0.0", fmt::format("{} octets received", *size));
    co_return;
  }
  co_await store_message(std::exchange(chunks_, {}));
  reset_transaction();
}

std::string SmtpSession::received_header() const {
  // RFC 5321 section 4.4 trace field; "with" per RFC 3848 and RFC 6531 (S = TLS, A = authenticated).
  std::string with = envelope_->smtputf8 ? "UTF8SMTP" : extended_ ? "ESMTP" : "SMTP";
  if (extended_ && client_.tls) with += "S";
  if (extended_ && !client_.user.empty()) with += "A";
  std::string header = fmt::format("Received: from {} ([{}])\r\n\tby {} (Tern) with {} id {}.{}", client_.helo,
                                   client_.address, server_.hostname(), with, client_.session_id, transactions_);
  if (envelope_->recipients.size() == 1) header += fmt::format("\r\n\tfor <{}>", envelope_->recipients.front().address);
  header += fmt::format(";\r\n\t{}\r\n", sdk::rfc5322_date(std::time(nullptr)));
  return header;
}

std::string SmtpSession::submission_headers(std::string_view message) const {
  // RFC 6409 section 8: a submission server may add the Date and Message-ID a client left out.
  std::string headers;
  if (!sdk::has_header_field(message, "Date"))
    headers += fmt::format("Date: {}\r\n", sdk::rfc5322_date(std::time(nullptr)));
  if (!sdk::has_header_field(message, "Message-ID")) {
    static thread_local std::mt19937_64 random{std::random_device{}()};
    headers += fmt::format("Message-ID: <{:016x}.{}@{}>\r\n", random(), client_.session_id, server_.hostname());
  }
  return headers;
}

sdk::Task<void> SmtpSession::store_message(std::string message) {
  ++transactions_;
  SmtpHookContext context(sdk::Stage::message, client_, &*envelope_);
  context.set_message(message);
  sdk::Verdict verdict = co_await server_.run_hooks(sdk::Stage::message, context);
  if (verdict.refuses()) {
    reply_verdict(verdict);
    co_return;
  }
  if (data_decision_.decided()) verdict = data_decision_;
  const bool applied = co_await apply_envelope_changes(context);
  if (!applied) co_return;
  const std::string queue_id = fmt::format("{}.{}", client_.session_id, transactions_);
  if (verdict.kind == sdk::VerdictKind::discard) {
    server_.log().info(fmt::format("message {} discarded by a hook", queue_id));
    reply(250, "2.0.0", fmt::format("Ok: queued as {}", queue_id));
    co_return;
  }
  // RFC 5321 section 6.3: a message that went round too often is refused, whatever caused the loop; and one
  // that already passed an alias that forwards it again would go round for ever.
  if (sdk::count_header_fields(message, "Received") > kMaxHops) {
    reply(554, "5.4.6", "Too many hops: the message is looping");
    co_return;
  }
  for (const std::string& alias : aliases_) {
    if (sdk::has_header_value(message, "Delivered-To", alias)) {
      reply(554, "5.4.6", fmt::format("Mail forwarding loop for <{}>", alias));
      co_return;
    }
  }
  std::string stored = received_header() + context.added_headers();
  // Marks the copies the aliases forward, so that the message is known when it comes back.
  for (const std::string& alias : aliases_) stored += fmt::format("Delivered-To: {}\r\n", alias);
  // As the hooks left it: a field they removed is gone.
  const std::string_view content = context.message();
  if (role_ == Role::submission) stored += submission_headers(content);
  stored += content;
  sdk::Intake intake;
  const std::string folder = verdict.kind == sdk::VerdictKind::quarantine ? verdict.folder : "INBOX";
  // `deliver`, once per local user: where their copy goes and with which flags, and who else gets one.
  const intake::Decisions decisions =
      co_await intake::decide(server_, client_, *envelope_, local_users_, stored, stored, folder, queue_id);
  if (decisions.refusal) {
    reply_verdict(*decisions.refusal);
    co_return;
  }
  intake.filings = decisions.filings;
  stored = decisions.redirected_by + stored;
  intake.sender = envelope_->sender;
  intake.remote = remote_;
  intake.ret = envelope_->ret;
  intake.envid = envelope_->envid;
  intake.smtputf8 = envelope_->smtputf8;
  sdk::MailStore& store = server_.store();
  // The quotas again, now that the size is known (a client need not announce it with SIZE): when no
  // recipient, local or remote, could take the message, it is refused; when some can, all get it, as the
  // reply after DATA is one for every recipient and a bounce for a few would be worse than a full mailbox.
  enum class QuotaRefusal { none, full, too_big } over_quota = QuotaRefusal::none;
  std::optional<std::string> disk_full;
  const std::optional<std::string> failure = co_await server_.attempt([&] {
    if (remote_.empty() && !local_users_.empty()) {
      bool any_room = false;
      bool ever_fits = false;
      for (const std::string& user : local_users_) {
        const sdk::QuotaInfo quota = store.quota(user);
        ever_fits = ever_fits || quota.could_hold(stored.size());
        any_room = any_room || quota.room_for(stored.size(), 1);
      }
      if (!any_room) {
        over_quota = ever_fits ? QuotaRefusal::full : QuotaRefusal::too_big;
        return;
      }
    }
    intake::add_redirects(store, decisions, intake);
    try {
      store.receive(stored, intake);
    } catch (const sdk::StoreFull& full) {
      disk_full = full.what();
    }
  });
  if (!failure && over_quota == QuotaRefusal::too_big) {
    reply(552, "5.2.2", "Message is larger than the mailbox's quota");
    co_return;
  }
  if (!failure && over_quota == QuotaRefusal::full) {
    reply(452, "4.2.2", "Mailbox full, try again later");
    co_return;
  }
  if (disk_full) {
    server_.log().error(fmt::format("storing message {} failed, no space: {}", queue_id, *disk_full));
    reply(452, "4.3.1", "Insufficient system storage, try again later");
    co_return;
  }
  if (failure) {
    server_.log().error(fmt::format("storing message {} failed: {}", queue_id, *failure));
    reply(451, "4.3.0", "Temporary failure storing the message, try again later");
    co_return;
  }
  std::vector<std::string> destinations;
  for (const sdk::Filing& filing : intake.filings) destinations.push_back(filing.user);
  server_.mailbox_changed(destinations);
  for (const sdk::Recipient& recipient : intake.remote) destinations.push_back("queue:" + recipient.address);
  server_.log().info(fmt::format("message {} from <{}> stored for {} ({} octets{})", queue_id, envelope_->sender,
                                 fmt::join(destinations, ", "), stored.size(),
                                 folder == "INBOX" ? "" : ", in " + folder));
  reply(250, "2.0.0", fmt::format("Ok: queued as {}", queue_id));
  server_.count("messages_received", 1);
  SmtpHookContext queued(sdk::Stage::queued, client_, &*envelope_);
  queued.set_message(stored);
  co_await server_.run_hooks(sdk::Stage::queued, queued);
}

}  // namespace tern::smtp
