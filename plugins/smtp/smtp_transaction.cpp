// The SMTP mail transaction: MAIL (with SIZE, BODY, SMTPUTF8 and DSN parameters), RCPT, DATA and BDAT, up to
// the durable store.
#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <random>

#include "intake.hpp"
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
  sdk::Directory& directory = server_.store().directory();
  const std::optional<std::string> failure =
      co_await server_.attempt([&] { owners = directory.resolve_recipient(sender); });
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

std::optional<sdk::Recipient> SmtpSession::parse_recipient(std::string_view argument) {
  std::optional<PathArgument> path = parse_path_argument(argument, "TO");
  if (!path) {
    error(501, "5.5.4", "Syntax: RCPT TO:<address>");
    return std::nullopt;
  }
  if (duplicate_parameters(*path)) {
    error(501, "5.5.4", "A parameter is given twice");
    return std::nullopt;
  }
  sdk::Recipient recipient{path->address, {}, {}};
  for (const auto& [name, value] : path->parameters) {
    if (name == "NOTIFY" && extended_) {
      std::optional<std::string> notify = parse_notify(value);
      if (!notify) {
        error(501, "5.5.4", "Syntax: NOTIFY=NEVER or NOTIFY=SUCCESS,FAILURE,DELAY");
        return std::nullopt;
      }
      recipient.notify = std::move(*notify);
    } else if (name == "ORCPT" && extended_) {
      std::optional<std::string> orcpt = parse_orcpt(value);
      if (!orcpt) {
        error(501, "5.5.4", "Syntax: ORCPT=<type>;<xtext>");
        return std::nullopt;
      }
      recipient.orcpt = std::move(*orcpt);
    } else {
      error(555, "5.5.4", fmt::format("Unsupported parameter {}", name));
      return std::nullopt;
    }
  }
  return recipient;
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
  std::optional<sdk::Recipient> parsed = parse_recipient(argument);
  if (!parsed) co_return;
  sdk::Recipient recipient = std::move(*parsed);
  if (!envelope_->smtputf8 && !is_ascii(recipient.address)) {
    error(553, "5.6.7", "Non-ASCII address needs SMTPUTF8");
    co_return;
  }
  if (envelope_->recipients.size() >= settings_.max_recipients) {
    reply(452, "4.5.3", "Too many recipients");
    co_return;
  }
  intake::Resolution destinations;
  enum class QuotaRefusal { none, full, too_big } over_quota = QuotaRefusal::none;
  sdk::MailStore& store = server_.store();
  const std::string hostname(server_.hostname());
  const std::optional<std::string> failure = co_await server_.attempt([&] {
    destinations = intake::resolve(store.directory(), hostname, recipient);
    for (const std::string& user : destinations.users) {
      const sdk::QuotaInfo quota = store.mailboxes().quota(user);
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
  if (destinations.nobody()) {
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
  destinations_.add(recipient, destinations);
  envelope_->recipients.push_back(std::move(recipient));
  reply(250, "2.1.5", "Recipient OK");
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
  std::string message = std::exchange(chunks_, {});
  co_await store_message(std::move(message));
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
  const std::string queue_id = fmt::format("{}.{}", client_.session_id, transactions_);
  intake::Incoming incoming;
  incoming.client = client_;
  incoming.received_field = received_header();
  // The transaction ends with this message (the caller resets it): its envelope and destinations move.
  incoming.envelope = std::move(*envelope_);
  incoming.destinations = std::move(destinations_);
  incoming.name = queue_id;
  incoming.early_verdict = data_decision_;
  if (role_ == Role::submission) {
    incoming.extra_fields = [this](std::string_view content) { return submission_headers(content); };
  }
  incoming.message = std::move(message);
  const intake::Outcome outcome = co_await intake::receive(server_, std::move(incoming));
  if (outcome.accepted()) {
    reply(250, "2.0.0", fmt::format("Ok: queued as {}", queue_id));
  } else {
    reply_verdict(outcome.reply);
  }
}

}  // namespace tern::smtp
