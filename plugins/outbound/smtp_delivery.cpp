#include "smtp_delivery.hpp"

#include <fmt/format.h>

#include <map>

#include "tern/sdk/text.hpp"

namespace tern::outbound {
namespace {

using Outcome = RecipientResult::Outcome;

constexpr std::size_t kDiagnosticLimit = 900;  // a DSN field stays one sane line

std::string bounded(std::string text) {
  if (text.size() > kDiagnosticLimit) text.resize(kDiagnosticLimit);
  return text;
}

// How long a host that refused a connection, or a TLS handshake, is passed over: long enough not to knock on
// a dead door for every message of a burst, short enough that a blip does not outlast it by much.
constexpr auto kRemembered = std::chrono::seconds(60);

bool recently(const std::map<std::string, std::chrono::steady_clock::time_point>& marks, const std::string& address) {
  const auto found = marks.find(address);
  return found != marks.end() && std::chrono::steady_clock::now() - found->second < kRemembered;
}

std::string label(const std::string& host, const std::string& address) {
  return host == address ? "[" + address + "]" : host + "[" + address + "]";
}

// Whether the envelope or header needs SMTPUTF8 from the peer: the sender asked for it and something in them
// is not ASCII (a message that only asked needs nothing).
bool needs_smtputf8(const EntryInFlight& entry, const Job& job, const std::string& message) {
  if (!entry.entry.smtputf8) return false;
  if (!sdk::is_ascii(entry.entry.sender)) return true;
  for (std::size_t index : job.recipients) {
    if (!sdk::is_ascii(entry.entry.recipients[index].address)) return true;
  }
  const std::size_t header_end = message.find("\r\n\r\n");
  return !sdk::is_ascii(std::string_view(message).substr(0, header_end));
}

}  // namespace

sdk::Task<MxAnswer> SmtpDelivery::hosts() {
  const Route& route = *destination_.route;
  if (route.via == Route::Via::relay) {
    MxAnswer relay;
    relay.outcome = MxAnswer::Outcome::found;
    relay.hosts.push_back({route.host, {route.host}});
    co_return relay;
  }
  const std::string self = settings_.helo_name.empty() ? sdk::lower_ascii(context_.hostname()) : settings_.helo_name;
  const MxAnswer answer = co_await find_mail_hosts(context_, destination_.domain, self);
  co_return answer;
}

sdk::Task<std::unique_ptr<SmtpClient>> SmtpDelivery::open(std::string host, std::string address, std::string& failure) {
  const Route& route = *destination_.route;
  const bool relay = route.via == Route::Via::relay;
  const std::string peer = label(host, address);
  sdk::ClientTls tls;
  tls.mode = route.tls == Route::Tls::implicit ? sdk::TlsMode::implicit : sdk::TlsMode::none;
  tls.verify = relay && route.verify;
  tls.server_name = host;
  const std::uint16_t port = relay ? route.port : settings_.mx_port;
  std::string error;
  std::shared_ptr<sdk::Connection> connection = co_await context_.connect(address, port, tls, error);
  if (!connection) {
    if (error.find("TLS") == std::string::npos) destination_.unreachable[address] = std::chrono::steady_clock::now();
    failure = "4.4.1 " + error;
    co_return nullptr;
  }
  auto client = std::make_unique<SmtpClient>(connection);
  const std::string helo = settings_.helo_name.empty() ? std::string(context_.hostname()) : settings_.helo_name;
  const Reply hello = co_await client->open(helo);
  if (!hello.positive()) {
    failure = hello.code == 0 ? fmt::format("4.4.2 {} {}", peer, hello.text) : hello.text;
    co_return nullptr;
  }
  const bool wants_tls = route.tls == Route::Tls::required ||
                         (route.tls == Route::Tls::opportunistic && !recently(destination_.no_tls, address));
  if (tls.mode != sdk::TlsMode::implicit && wants_tls) {
    if (client->extensions().starttls) {
      const Reply secured = co_await client->start_tls(helo);
      if (!secured.positive()) {
        if (route.tls == Route::Tls::opportunistic) destination_.no_tls[address] = std::chrono::steady_clock::now();
        failure = fmt::format("4.7.5 STARTTLS with {} failed: {}", peer, secured.text);
        co_return nullptr;
      }
    } else if (route.tls == Route::Tls::required) {
      failure = fmt::format("4.7.4 TLS is required for this destination and {} does not offer STARTTLS", peer);
      co_await client->quit();
      co_return nullptr;
    }
  }
  if (relay && !route.user.empty()) {
    // The password never crosses the network in clear: a relay that did not offer STARTTLS gets no login.
    if (!connection->tls_active()) {
      failure = fmt::format("4.7.10 {} offered no STARTTLS, and the login to it needs TLS", peer);
      co_await client->quit();
      co_return nullptr;
    }
    const Reply login = co_await client->authenticate(route.user, route.password);
    if (login.code != 235) {
      // A refused login is the relay's configuration or ours, not the message's fault: retried, never bounced.
      failure = fmt::format("4.7.8 {} refused the login of {}: {}", peer, route.user, login.text);
      co_await client->quit();
      co_return nullptr;
    }
  }
  co_return client;
}

sdk::Task<std::vector<std::size_t>> SmtpDelivery::transfer(Job& job, const std::string& message, std::string peer,
                                                           std::vector<std::size_t> remaining,
                                                           std::string& last_failure) {
  EntryInFlight& entry = *job.entry;
  const bool eight_bit = !sdk::is_ascii(message);
  const bool smtputf8 = needs_smtputf8(entry, job, message);
  const Extensions& extensions = client_->extensions();
  std::string refusal;
  if (extensions.size_limit != 0 && message.size() > extensions.size_limit) {
    refusal = fmt::format("5.3.4 the message is {} octets and {} takes at most {}", message.size(), peer,
                          extensions.size_limit);
  } else if (eight_bit && !extensions.eight_bit_mime) {
    refusal = fmt::format("5.6.3 the message has 8-bit content and {} does not support 8BITMIME", peer);
  } else if (smtputf8 && !extensions.smtputf8) {
    refusal = fmt::format("5.6.7 the message needs SMTPUTF8 (international addresses or header) and {} lacks it", peer);
  }
  if (!refusal.empty()) {
    for (std::size_t index : remaining) job.set(index, Outcome::permanent, refusal, peer);
    co_return std::vector<std::size_t>{};
  }
  // Those the host deferred go on to the next host. A 452 to some recipients while others were taken is
  // the peer's recipient limit: RFC 5321 section 4.5.3.1.10, the rest in a new transaction on this one.
  std::vector<std::size_t> deferred;
  std::vector<std::size_t> batch = std::move(remaining);
  while (!batch.empty()) {
    Transaction transaction;
    transaction.sender = entry.entry.sender;
    for (std::size_t index : batch) transaction.recipients.push_back(entry.entry.recipients[index]);
    transaction.ret = entry.entry.ret;
    transaction.envid = entry.entry.envid;
    transaction.eight_bit = eight_bit;
    transaction.smtputf8 = smtputf8;
    transaction.message = &message;
    const std::vector<Reply> replies = co_await client_->send(transaction);
    std::vector<std::size_t> too_many;
    bool any_delivered = false;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      const Reply& reply = replies[i];
      const std::size_t index = batch[i];
      if (reply.positive()) {
        any_delivered = true;
        job.set(index, Outcome::delivered, bounded(reply.text), peer, extensions.dsn);
      } else if (!reply.transient()) {
        job.set(index, Outcome::permanent, bounded(reply.text), peer);
      } else {
        last_failure = reply.code == 0 ? fmt::format("4.4.2 {}: {}", peer, reply.text) : bounded(reply.text);
        job.set(index, Outcome::temporary, last_failure, reply.code == 0 ? "" : peer);
        (reply.code == 452 ? too_many : deferred).push_back(index);
      }
    }
    if (any_delivered && client_->usable()) {
      batch = std::move(too_many);
    } else {
      deferred.insert(deferred.end(), too_many.begin(), too_many.end());
      batch.clear();
    }
  }
  co_return deferred;
}

sdk::Task<void> SmtpDelivery::deliver(Job& job, const std::string& message) {
  EntryInFlight& entry = *job.entry;
  const MxAnswer answer = co_await hosts();
  if (answer.outcome != MxAnswer::Outcome::found) {
    const bool permanent =
        answer.outcome == MxAnswer::Outcome::null_mx || answer.outcome == MxAnswer::Outcome::no_such_domain;
    const std::string code = answer.outcome == MxAnswer::Outcome::null_mx ? "5.1.10"
                             : permanent                                  ? "5.1.2"
                             : answer.outcome == MxAnswer::Outcome::loop  ? "4.4.6"
                                                                          : "4.4.3";
    for (std::size_t index : job.recipients) {
      job.set(index, permanent ? Outcome::permanent : Outcome::temporary, code + " " + answer.error);
    }
    co_return;
  }
  std::vector<std::size_t> remaining = job.recipients;
  std::string last_failure = "4.4.1 no mail host could be reached";
  for (const MailHost& host : answer.hosts) {
    for (const std::string& address : host.addresses) {
      if (remaining.empty()) co_return;
      if (recently(destination_.unreachable, address)) {
        last_failure = fmt::format("4.4.1 {} could not be reached a moment ago", label(host.name, address));
        continue;
      }
      if (!client_ || client_address_ != address || !client_->usable()) {
        if (client_) co_await close();
        std::string failure;
        std::unique_ptr<SmtpClient> opened = co_await open(host.name, address, failure);
        // An opportunistic TLS failure leaves the host usable in plaintext: once more, without TLS.
        if (!opened && failure.rfind("4.7.5", 0) == 0 && recently(destination_.no_tls, address)) {
          std::unique_ptr<SmtpClient> plain = co_await open(host.name, address, failure);
          opened = std::move(plain);
        }
        if (!opened) {
          last_failure = failure;
          context_.log().info(fmt::format("outbound: {}: {}", label(host.name, address), failure));
          continue;
        }
        client_ = std::move(opened);
        client_address_ = address;
      }
      const std::string peer = label(host.name, address);
      std::vector<std::size_t> deferred = co_await transfer(job, message, peer, std::move(remaining), last_failure);
      remaining = std::move(deferred);
    }
  }
  for (std::size_t index : remaining) {
    if (entry.results[index].outcome == Outcome::untried) job.set(index, Outcome::temporary, last_failure);
  }
}

sdk::Task<void> SmtpDelivery::close() {
  if (client_) {
    co_await client_->quit();
    client_.reset();
  }
  client_address_.clear();
}

}  // namespace tern::outbound
