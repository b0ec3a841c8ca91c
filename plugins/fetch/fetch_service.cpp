#include "fetch_service.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <memory>
#include <mutex>
#include <set>

#include "pop3_client.hpp"
#include "tern/sdk/text.hpp"

namespace tern::fetch {
namespace {

// What hooks at `message` see of a collected message: the account's server as the client, the account's
// user as the one recipient, and the sender its Return-Path says.
class CollectedContext final : public sdk::HookContext {
 public:
  CollectedContext(sdk::ClientInfo client, sdk::Envelope envelope, std::string_view message)
      : client_(std::move(client)), envelope_(std::move(envelope)), message_(message) {}

  sdk::Stage stage() const override { return sdk::Stage::message; }
  const sdk::ClientInfo& client() const override { return client_; }
  const sdk::Envelope* envelope() const override { return &envelope_; }
  std::string_view recipient() const override {
    throw std::logic_error("recipient() is not available at stage message");
  }
  std::string_view message() const override { return message_; }
  void add_header(std::string_view name, std::string_view value) override {
    added_ += fmt::format("{}: {}\r\n", name, value);
  }
  const std::string& added_headers() const { return added_; }

 private:
  sdk::ClientInfo client_;
  sdk::Envelope envelope_;
  std::string_view message_;
  std::string added_;
};

// The address in a Return-Path header, or "" (the null sender) when there is none.
std::string return_path(std::string_view message) {
  std::string_view header = message.substr(0, message.find("\r\n\r\n"));
  while (!header.empty()) {
    const std::size_t end = header.find("\r\n");
    const std::string_view line = header.substr(0, end);
    if (sdk::lower_ascii(line.substr(0, 12)) == "return-path:") {
      const std::size_t open = line.find('<');
      const std::size_t close = line.find('>', open);
      if (open != std::string_view::npos && close != std::string_view::npos) {
        return std::string(line.substr(open + 1, close - open - 1));
      }
      return "";
    }
    if (end == std::string_view::npos) break;
    header.remove_prefix(end + 2);
  }
  return "";
}

// The accounts being polled now, in this process. After a reload the old generation's poller may still be
// finishing while the new one starts: two polls of one account at once could both take a message that
// neither had marked yet.
class PollsUnderWay {
 public:
  bool begin(const std::string& account) {
    std::lock_guard lock(mutex_);
    return polling_.insert(account).second;
  }
  void end(const std::string& account) {
    std::lock_guard lock(mutex_);
    polling_.erase(account);
  }

 private:
  std::mutex mutex_;
  std::set<std::string> polling_;
};

PollsUnderWay& polls_under_way() {
  static PollsUnderWay polls;
  return polls;
}

std::string rfc5322_date() {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  ::gmtime_r(&now, &utc);
  char text[64];
  std::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S +0000", &utc);
  return text;
}

}  // namespace

sdk::Task<void> FetchService::run(sdk::ServiceContext& context) const {
  using Clock = std::chrono::steady_clock;
  std::vector<Clock::time_point> due(accounts_.size(), Clock::now());
  std::vector<int> failures(accounts_.size(), 0);
  while (!context.stopping()) {
    for (std::size_t i = 0; i < accounts_.size() && !context.stopping(); ++i) {
      if (Clock::now() < due[i]) continue;
      if (!polls_under_way().begin(accounts_[i].name)) continue;  // the other poller has it; try again soon
      const std::unique_ptr<const std::string, void (*)(const std::string*)> under_way(
          &accounts_[i].name, [](const std::string* name) { polls_under_way().end(*name); });
      const bool polled = co_await poll(context, accounts_[i]);
      failures[i] = polled ? 0 : failures[i] + 1;
      // After failures the next poll waits longer, up to eight intervals: a server that is down is not
      // hammered, and one that is back is found again.
      const int factor = polled ? 1 : std::min(1 << std::min(failures[i] - 1, 3), 8);
      due[i] = Clock::now() + accounts_[i].interval * factor;
    }
    const auto next = *std::min_element(due.begin(), due.end());
    const auto wait = std::chrono::duration_cast<std::chrono::seconds>(next - Clock::now()) + std::chrono::seconds(1);
    const bool awake = co_await context.sleep_for(std::max(wait, std::chrono::seconds(1)));
    if (!awake) break;
  }
}

sdk::Task<bool> FetchService::poll(sdk::ServiceContext& context, const Account& account) const {
  std::string error;
  std::shared_ptr<sdk::Connection> connection =
      co_await context.connect(account.server, account.port, account.tls, error);
  if (!connection) {
    context.log().warn(fmt::format("fetch {}: {}; retrying later", account.name, error));
    co_return false;
  }
  Pop3Client client(*connection);
  const auto failed = [&](const std::string& what) {
    context.log().warn(fmt::format("fetch {}: {}; retrying later", account.name, what));
    return false;
  };
  const bool greeted = co_await client.greeting();
  if (!greeted) co_return failed(client.error());
  if (account.tls.mode == sdk::TlsMode::starttls) {
    const bool secured = co_await client.start_tls();
    if (!secured) co_return failed(client.error());
  }
  const bool logged_in = co_await client.login(account.user, account.password);
  if (!logged_in) co_return failed(client.error());
  const std::optional<std::vector<std::pair<int, std::string>>> uidls = co_await client.list_uidls();
  if (!uidls) co_return failed(client.error());
  const std::string space = "fetch:" + account.name;
  std::vector<std::pair<std::string, std::string>> known;
  sdk::MailStore& store = context.store();
  const std::optional<std::string> unavailable = co_await context.attempt([&] { known = store.state_list(space); });
  if (unavailable) co_return failed("the store: " + *unavailable);
  std::set<std::string> seen;
  for (const auto& [uidl, when] : known) seen.insert(uidl);
  int collected = 0;
  for (const auto& [number, uidl] : *uidls) {
    if (context.stopping()) break;
    if (seen.contains(uidl)) {
      // Stored by an earlier poll whose deletion did not happen (a crash, keep, a lost QUIT).
      if (!account.keep) {
        const bool removed = co_await client.remove(number);
        if (!removed) co_return failed(client.error());
      }
      continue;
    }
    std::optional<std::string> message = co_await client.retrieve(number);
    if (!message) co_return failed(client.error());
    const bool filed = co_await file(context, account, uidl, std::move(*message));
    if (!filed) break;  // left on the server for the next poll
    ++collected;
    if (!account.keep) {
      const bool removed = co_await client.remove(number);
      if (!removed) co_return failed(client.error());
    }
  }
  const bool done = co_await client.quit();
  if (!done) co_return failed(client.error());
  // What the server no longer has need not be remembered.
  std::set<std::string> present;
  for (const auto& [number, uidl] : *uidls) present.insert(uidl);
  if (!account.keep) present.clear();
  std::vector<std::string> forgotten;
  for (const std::string& uidl : seen) {
    if (!present.contains(uidl)) forgotten.push_back(uidl);
  }
  co_await context.attempt([&] {
    for (const std::string& uidl : forgotten) store.state_erase(space, uidl);
  });
  if (collected > 0) {
    context.log().info(fmt::format("fetch {}: {} new message(s) for {}", account.name, collected, account.deliver_to));
  }
  co_return true;
}

sdk::Task<bool> FetchService::file(sdk::ServiceContext& context, const Account& account, const std::string& uidl,
                                   std::string message) const {
  sdk::ClientInfo client;
  client.session_id = "fetch:" + account.name;
  client.protocol = "fetch";
  client.address = account.server;
  client.tls = account.tls.mode != sdk::TlsMode::none;
  sdk::Envelope envelope;
  envelope.sender = return_path(message);
  envelope.recipients.push_back({account.deliver_to, "", ""});
  CollectedContext hooks(client, envelope, message);
  const sdk::Verdict verdict = co_await context.run_hooks(sdk::Stage::message, hooks);
  sdk::Intake intake;
  intake.sender = envelope.sender;
  intake.state = {{"fetch:" + account.name, uidl, std::to_string(std::time(nullptr))}};
  if (verdict.refuses()) {
    // Refused mail is not lost: it stays on the server, unmarked, and the log says why.
    context.log().warn(fmt::format("fetch {}: message {} refused by a hook ({} {}); left on the server", account.name,
                                   uidl, verdict.code, verdict.text));
    co_return false;
  }
  sdk::MailStore& store = context.store();
  if (verdict.kind == sdk::VerdictKind::discard) {
    const std::optional<std::string> failure = co_await context.attempt([&] { store.state_put(intake.state); });
    co_return !failure;
  }
  intake.local_users = {account.deliver_to};
  intake.mailbox = verdict.kind == sdk::VerdictKind::quarantine ? verdict.folder : "INBOX";
  const std::string stored =
      fmt::format("Received: from {} by {} with POP3 (Tern fetch {}) for <{}>; {}\r\n", account.server,
                  context.hostname(), account.name, account.deliver_to, rfc5322_date()) +
      hooks.added_headers() + message;
  const std::optional<std::string> failure = co_await context.attempt([&] { store.receive(stored, intake); });
  if (failure) {
    context.log().error(fmt::format("fetch {}: storing message {} failed: {}", account.name, uidl, *failure));
    co_return false;
  }
  context.mailbox_changed({account.deliver_to});
  co_return true;
}

}  // namespace tern::fetch
