#include "fetch_service.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <optional>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>
#include <algorithm>
#include <ctime>

#include <filesystem>
#include <map>
#include <memory>
#include <set>

#include "addresses.hpp"
#include "imap_client.hpp"
#include "intake.hpp"
#include "pop3_client.hpp"
#include "recipients.hpp"
#include "tern/sdk/header.hpp"

namespace tern::fetch {
namespace {

// The address in a Return-Path header, or "" (the null sender) when there is none.
std::string return_path(std::string_view message) {
  const std::string value = sdk::header_value(message, "Return-Path").value_or("");
  const std::size_t open = value.find('<');
  const std::size_t close = value.find('>', open);
  if (open == std::string::npos || close == std::string::npos) return "";
  return value.substr(open + 1, close - open - 1);
}

// One poll of an account at a time, across processes: the server's schedule, an on-demand `tern fetch run`,
// and after a reload the old generation's poller still finishing. Two polls at once could both take a message
// that neither had marked yet. An flock on <data_dir>/fetch-<account>.lock, released when the object goes.
class AccountLock {
 public:
  // With `wait`, blocks until the lock is free (call it on the worker pool); without, gives up at once.
  AccountLock(const std::filesystem::path& data_dir, const std::string& account, bool wait) {
    const std::string path = (data_dir / ("fetch-" + account + ".lock")).string();
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ >= 0 && ::flock(fd_, LOCK_EX | (wait ? 0 : LOCK_NB)) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~AccountLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  AccountLock(const AccountLock&) = delete;
  AccountLock& operator=(const AccountLock&) = delete;
  bool held() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

// Whether a kept message was collected long enough ago to go (delete_after_days).
bool expired(const Account& account, const std::map<std::string, std::int64_t>& collected_at, const std::string& key) {
  if (!account.delete_after) return false;
  const auto found = collected_at.find(key);
  return found != collected_at.end() && std::time(nullptr) - found->second >= account.delete_after->count();
}

bool log_failure(sdk::ServiceContext& context, const Account& account, const std::string& what) {
  context.log().warn(fmt::format("fetch {}: {}; retrying later", account.name, what));
  return false;
}

// Greeting, STLS or STARTTLS when the account asks for it, and login: the same steps in POP3 and IMAP. False
// (and logged) when one fails.
template <typename Client>
sdk::Task<bool> open_session(sdk::ServiceContext& context, const Account& account, Client& client) {
  const bool greeted = co_await client.greeting();
  if (!greeted) co_return log_failure(context, account, client.error());
  if (account.tls.mode == sdk::TlsMode::starttls) {
    const bool secured = co_await client.start_tls();
    if (!secured) co_return log_failure(context, account, client.error());
  }
  const bool logged_in = co_await client.login(account.user, account.password);
  if (!logged_in) co_return log_failure(context, account, client.error());
  co_return true;
}

// What earlier polls collected from the account: key (UIDL, or UIDVALIDITY.UID) to when, in seconds.
sdk::Task<std::optional<std::map<std::string, std::int64_t>>> load_collected(sdk::ServiceContext& context,
                                                                             const Account& account) {
  std::vector<std::pair<std::string, std::string>> known;
  sdk::MailStore& store = context.store();
  const std::optional<std::string> unavailable =
      co_await context.attempt([&] { known = store.state().list("fetch:" + account.name); });
  if (unavailable) {
    log_failure(context, account, "the store: " + *unavailable);
    co_return std::nullopt;
  }
  std::map<std::string, std::int64_t> collected;
  for (const auto& [key, when] : known) collected[key] = std::atoll(when.c_str());
  co_return collected;
}

}  // namespace

sdk::Task<void> FetchService::run(sdk::ServiceContext& context) const {
  using Clock = std::chrono::steady_clock;
  std::vector<Clock::time_point> due(accounts_.size(), Clock::now());
  std::vector<int> failures(accounts_.size(), 0);
  while (!context.stopping()) {
    for (std::size_t i = 0; i < accounts_.size() && !context.stopping(); ++i) {
      if (Clock::now() < due[i]) continue;
      const AccountLock lock(context.data_dir(), accounts_[i].name, false);
      if (!lock.held()) continue;  // another poll has it (`tern fetch run`, a reload): try again soon
      const bool polled = co_await poll(context, accounts_[i]);
      failures[i] = polled ? 0 : failures[i] + 1;
      // After failures the next poll waits longer, up to eight intervals: a server that is down is not
      // hammered, and one that is back is found again.
      const int factor = polled ? 1 : 1 << std::min(failures[i] - 1, 3);
      due[i] = Clock::now() + accounts_[i].interval * factor;
    }
    const auto next = *std::min_element(due.begin(), due.end());
    const auto wait = std::chrono::duration_cast<std::chrono::seconds>(next - Clock::now()) + std::chrono::seconds(1);
    const bool awake = co_await context.sleep_for(std::max(wait, std::chrono::seconds(1)));
    if (!awake) break;
  }
}

sdk::Task<int> FetchService::run_once(sdk::ServiceContext& context, std::string target) const {
  bool known = target.empty();
  bool all_polled = true;
  for (const Account& account : accounts_) {
    if (!target.empty() && account.name != target) continue;
    known = true;
    // Waits for a poll under way (the server's) to end rather than skip: the administrator asked for one.
    std::unique_ptr<AccountLock> lock;
    const std::optional<std::string> failure =
        co_await context.attempt([&] { lock = std::make_unique<AccountLock>(context.data_dir(), account.name, true); });
    if (failure || !lock->held()) {
      context.log().error(fmt::format("fetch {}: cannot take the account's lock file", account.name));
      all_polled = false;
      continue;
    }
    const bool polled = co_await poll(context, account);
    all_polled = all_polled && polled;
  }
  if (!known) {
    context.log().error(fmt::format("fetch: no account named \"{}\"", target));
    co_return 2;
  }
  co_return all_polled ? 0 : 1;
}

sdk::Task<bool> FetchService::poll(sdk::ServiceContext& context, const Account& account) const {
  std::string error;
  std::shared_ptr<sdk::Connection> connection =
      co_await context.connect(account.server, account.port, account.tls, error);
  if (!connection) {
    context.log().warn(fmt::format("fetch {}: {}; retrying later", account.name, error));
    co_return false;
  }
  if (account.protocol == Account::Protocol::imap) {
    const bool polled = co_await poll_imap(context, account, *connection);
    co_return polled;
  }
  const bool polled = co_await poll_pop3(context, account, *connection);
  co_return polled;
}

sdk::Task<void> FetchService::forget(sdk::ServiceContext& context, const Account& account,
                                     const std::map<std::string, std::int64_t>& collected,
                                     const std::set<std::string>& present) const {
  std::vector<std::string> forgotten;
  for (const auto& [key, when] : collected) {
    if (!account.keep || !present.contains(key)) forgotten.push_back(key);
  }
  sdk::MailStore& store = context.store();
  const std::string space = "fetch:" + account.name;
  co_await context.attempt([&] {
    for (const std::string& key : forgotten) store.state().erase(space, key);
  });
}

sdk::Task<bool> FetchService::poll_imap(sdk::ServiceContext& context, const Account& account,
                                        sdk::Connection& connection) const {
  ImapClient client(connection);
  const auto failed = [&](const std::string& what) { return log_failure(context, account, what); };
  const bool opened = co_await open_session(context, account, client);
  if (!opened) co_return false;
  const std::optional<std::uint32_t> uidvalidity = co_await client.select(account.folder);
  if (!uidvalidity) co_return failed(client.error());
  const std::optional<std::vector<std::uint32_t>> uids = co_await client.uids();
  if (!uids) co_return failed(client.error());
  const std::optional<std::map<std::string, std::int64_t>> collected_at = co_await load_collected(context, account);
  if (!collected_at) co_return false;
  // A message is known by the mailbox's UIDVALIDITY and its UID: a mailbox made anew starts over.
  std::set<std::string> present;
  bool expunge = false;
  int collected = 0;
  for (const std::uint32_t uid : *uids) {
    if (context.stopping()) break;
    const std::string key = fmt::format("{}.{}", *uidvalidity, uid);
    present.insert(key);
    if (!collected_at->contains(key)) {
      std::optional<std::string> message = co_await client.fetch(uid);
      if (!message) co_return failed(client.error());
      const bool filed = co_await file(context, account, key, std::move(*message));
      if (!filed) continue;  // stays on the server, unmarked, for the next poll
      ++collected;
    }
    // Marked on the server only once the local copy is durable.
    const bool remove = !account.keep || expired(account, *collected_at, key);
    expunge = expunge || remove;
    const bool marked = co_await client.add_flags(uid, remove ? "\\Seen \\Deleted" : "\\Seen");
    if (!marked) co_return failed(client.error());
  }
  if (expunge) {
    const bool closed = co_await client.close();
    if (!closed) co_return failed(client.error());
  }
  const bool done = co_await client.logout();
  if (!done) co_return failed(client.error());
  co_await forget(context, account, *collected_at, present);
  if (collected > 0) context.log().info(fmt::format("fetch {}: {} new message(s)", account.name, collected));
  co_return true;
}

sdk::Task<bool> FetchService::poll_pop3(sdk::ServiceContext& context, const Account& account,
                                        sdk::Connection& connection) const {
  Pop3Client client(connection);
  const auto failed = [&](const std::string& what) { return log_failure(context, account, what); };
  const bool opened = co_await open_session(context, account, client);
  if (!opened) co_return false;
  const std::optional<std::vector<std::pair<int, std::string>>> uidls = co_await client.list_uidls();
  if (!uidls) co_return failed(client.error());
  const std::optional<std::map<std::string, std::int64_t>> collected_at = co_await load_collected(context, account);
  if (!collected_at) co_return false;
  int collected = 0;
  for (const auto& [number, uidl] : *uidls) {
    if (context.stopping()) break;
    if (collected_at->contains(uidl)) {
      // Stored by an earlier poll whose deletion did not happen (a crash, a lost QUIT), or kept until now.
      if (!account.keep || expired(account, *collected_at, uidl)) {
        const bool removed = co_await client.remove(number);
        if (!removed) co_return failed(client.error());
      }
      continue;
    }
    std::optional<std::string> message = co_await client.retrieve(number);
    if (!message) co_return failed(client.error());
    const bool filed = co_await file(context, account, uidl, std::move(*message));
    if (!filed) continue;  // left on the server, unmarked, for the next poll
    ++collected;
    if (!account.keep) {
      const bool removed = co_await client.remove(number);
      if (!removed) co_return failed(client.error());
    }
  }
  const bool done = co_await client.quit();
  if (!done) co_return failed(client.error());
  // What the server no longer has, or was told to delete, need not be remembered.
  std::set<std::string> present;
  for (const auto& [number, uidl] : *uidls) present.insert(uidl);
  co_await forget(context, account, *collected_at, present);
  if (collected > 0) {
    context.log().info(fmt::format("fetch {}: {} new message(s)", account.name, collected));
  }
  co_return true;
}

FetchService::Destination FetchService::destination(sdk::Directory& directory, const Account& account,
                                                    std::string_view message) const {
  if (account.domain.empty()) return {{account.deliver_to}, "INBOX"};
  std::set<std::string> users;
  const auto resolve = [&](const std::string& address) {
    for (std::string& user : directory.resolve_recipient(address)) users.insert(std::move(user));
  };
  // Rules first: a mailing list, or a sender, mapped to the users who read it.
  const std::vector<std::string> list_ids = sdk::header_values(message, "List-Id");
  std::vector<std::string> senders = mime::address_specs(return_path(message));
  for (const std::string& from : sdk::header_values(message, "From")) {
    for (std::string& address : mime::address_specs(from)) senders.push_back(std::move(address));
  }
  for (const Account::Rule& rule : account.rules) {
    const bool list =
        !rule.list_id.empty() && std::any_of(list_ids.begin(), list_ids.end(), [&](const std::string& id) {
          return sdk::lower_ascii(id).find(rule.list_id) != std::string::npos;
        });
    const bool sender = !rule.sender.empty() && std::find(senders.begin(), senders.end(), rule.sender) != senders.end();
    if (list || sender) {
      for (const std::string& address : rule.deliver_to) resolve(address);
      if (!users.empty()) return {{users.begin(), users.end()}, "INBOX"};
    }
  }
  // Then the envelope recipient as the ISP recorded it, field by field in the configured order, then To and
  // Cc: the first that names a local user decides.
  std::vector<std::vector<std::string>> sources = candidate_recipients(message, account.envelope_fields);
  std::vector<std::string> addressed;  // To and Cc together: a message to two local users reaches both
  for (const std::vector<std::string>& found : candidate_recipients(message, {"To", "Cc"})) {
    addressed.insert(addressed.end(), found.begin(), found.end());
  }
  sources.push_back(std::move(addressed));
  for (const std::vector<std::string>& candidates : sources) {
    for (const std::string& address : candidates) resolve(address);
    if (!users.empty()) return {{users.begin(), users.end()}, "INBOX"};
  }
  // For nobody here: the postmaster's Lost folder, never dropped.
  resolve("postmaster@" + account.domain);
  return {{users.begin(), users.end()}, "Lost"};
}

sdk::Task<bool> FetchService::file(sdk::ServiceContext& context, const Account& account, const std::string& uidl,
                                   std::string message) const {
  Destination destination;
  sdk::MailStore& store = context.store();
  const std::optional<std::string> unresolved =
      co_await context.attempt([&] { destination = this->destination(store.directory(), account, message); });
  if (unresolved || destination.users.empty()) {
    context.log().error(
        fmt::format("fetch {}: message {} has no local recipient and there is no postmaster for {}; "
                    "left on the server",
                    account.name, uidl, account.domain));
    co_return false;
  }
  if (destination.mailbox == "Lost") {
    context.log().warn(fmt::format("fetch {}: message {} names no local recipient; filed in Lost for {}", account.name,
                                   uidl, fmt::join(destination.users, ", ")));
  }
  intake::Incoming incoming;
  incoming.client.session_id = "fetch:" + account.name;
  incoming.client.protocol = "fetch";
  incoming.client.address = account.server;
  incoming.client.tls = account.tls.mode != sdk::TlsMode::none;
  incoming.envelope.sender = return_path(message);
  for (const std::string& user : destination.users) {
    const sdk::Recipient recipient{user, "", ""};
    incoming.envelope.recipients.push_back(recipient);
    incoming.destinations.add(recipient, {true, {user}, {}});
  }
  incoming.name = fmt::format("{} of fetch {}", uidl, account.name);
  incoming.folder = destination.mailbox;
  incoming.received_field =
      fmt::format("Received: from {} by {} with {} (Tern fetch {}); {}\r\n", account.server, context.hostname(),
                  account.protocol == Account::Protocol::imap ? "IMAP" : "POP3", account.name,
                  sdk::rfc5322_date(std::time(nullptr)));
  // Marked collected in the same commit as the copy: a crash between the two can neither lose it nor fetch it twice.
  incoming.state = {{"fetch:" + account.name, uidl, std::to_string(std::time(nullptr))}};
  incoming.message = std::move(message);
  const intake::Outcome outcome = co_await intake::receive(context, std::move(incoming));
  // Mail that is not filed is not lost: it stays on the server, unmarked, and the log says why.
  if (outcome.status == intake::Outcome::Status::refused) {
    context.log().warn(fmt::format("fetch {}: message {} refused by a {}hook ({} {}); left on the server", account.name,
                                   uidl, outcome.refused_at == sdk::Stage::deliver ? "deliver " : "",
                                   outcome.reply.code, outcome.reply.text));
  } else if (!outcome.accepted()) {
    context.log().error(fmt::format("fetch {}: storing message {} failed ({} {} {}); left on the server", account.name,
                                    uidl, outcome.reply.code, outcome.reply.enhanced, outcome.reply.text));
  }
  co_return outcome.accepted();
}

}  // namespace tern::fetch
