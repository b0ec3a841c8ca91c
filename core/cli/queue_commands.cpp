// `tern queue list|show|summary|flush|hold|release|remove`, over the store's queue API. Delivery itself belongs
// to the outbound plugin's service: `flush` makes entries due and then runs that service's pass in this process.
#include "cli/queue_commands.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <array>
#include <ctime>
#include <iostream>
#include <map>
#include <memory>

#include "cli/run_service.hpp"
#include "cli/store_session.hpp"
#include "tern/sdk/address.hpp"

namespace tern::cli {
namespace {

std::int64_t now_seconds() {
  return static_cast<std::int64_t>(std::time(nullptr));
}

std::string utc_time(std::int64_t seconds) {
  std::time_t time = seconds;
  std::tm utc{};
  ::gmtime_r(&time, &utc);
  return fmt::format("{:%Y-%m-%dT%H:%M:%SZ}", utc);
}

std::string status_line(const sdk::QueueRecipient& recipient) {
  const std::string from = recipient.remote_host.empty() ? "" : " (" + recipient.remote_host + ")";
  switch (recipient.status) {
    case sdk::DeliveryStatus::pending:
      return recipient.diagnostic.empty() ? "pending" : "deferred: " + recipient.diagnostic + from;
    case sdk::DeliveryStatus::held: return "held until its domain is flushed";
    case sdk::DeliveryStatus::released: return "released by a flush of its domain: to be tried now";
    case sdk::DeliveryStatus::delivered: return "delivered: " + recipient.diagnostic + from;
    case sdk::DeliveryStatus::failed: return "failed: " + recipient.diagnostic + from;
  }
  return "";
}

std::int64_t parsed_id(const std::string& text) {
  std::size_t used = 0;
  long long id = 0;
  try {
    id = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size() || id <= 0) {
    throw CLI::ValidationError(fmt::format("\"{}\" is not a queue id (a number that `tern queue list` shows)", text));
  }
  return id;
}

int list(sdk::MailStore& store) {
  const std::vector<sdk::QueueEntry> entries = store.queue().list();
  if (entries.empty()) {
    std::cout << "Queue is empty\n";
    return 0;
  }
  for (const sdk::QueueEntry& entry : entries) {
    std::cout << fmt::format("{:<8} {} {:>9}  <{}>  {} attempt{}{}\n", entry.id, utc_time(entry.created), entry.size,
                             entry.sender, entry.attempts, entry.attempts == 1 ? "" : "s",
                             entry.held ? ", on hold" : ", next " + utc_time(entry.next_attempt));
    for (const sdk::QueueRecipient& recipient : entry.recipients) {
      std::cout << fmt::format("         {}  {}\n", recipient.address, status_line(recipient));
    }
  }
  std::cout << fmt::format("-- {} message{} queued\n", entries.size(), entries.size() == 1 ? "" : "s");
  return 0;
}

int show(sdk::MailStore& store, std::int64_t id) {
  const std::optional<sdk::QueueEntry> entry = store.queue().entry(id);
  if (!entry) {
    std::cerr << fmt::format("tern: no queue entry {}\n", id);
    return 1;
  }
  std::cout << fmt::format("id: {}\nsender: <{}>\narrived: {}\nsize: {}\nattempts: {}\n", entry->id, entry->sender,
                           utc_time(entry->created), entry->size, entry->attempts);
  std::cout << (entry->held ? std::string("on hold: yes\n") : "next attempt: " + utc_time(entry->next_attempt) + "\n");
  if (!entry->ret.empty()) std::cout << "ret: " << entry->ret << '\n';
  if (!entry->envid.empty()) std::cout << "envid: " << entry->envid << '\n';
  if (entry->smtputf8) std::cout << "smtputf8: yes\n";
  for (const sdk::QueueRecipient& recipient : entry->recipients) {
    std::cout << "recipient: " << recipient.address;
    if (!recipient.notify.empty()) std::cout << " notify=" << recipient.notify;
    if (!recipient.orcpt.empty()) std::cout << " orcpt=" << recipient.orcpt;
    std::cout << "\n  " << status_line(recipient) << '\n';
  }
  std::cout << '\n' << store.queue().read(id);
  return 0;
}

// Recipients still to deliver, by domain and by how long they have waited: where mail piles up, and since when.
int summary(sdk::MailStore& store) {
  constexpr std::array<std::int64_t, 5> limits{5 * 60, 3600, 4 * 3600, 24 * 3600, INT64_MAX};
  std::map<std::string, std::array<std::size_t, 6>> rows;  // total, then one count per age column
  const std::int64_t now = now_seconds();
  for (const sdk::QueueEntry& entry : store.queue().list()) {
    const std::int64_t age = now - entry.created;
    std::size_t column = 0;
    while (age >= limits[column]) ++column;
    for (const sdk::QueueRecipient& recipient : entry.recipients) {
      if (recipient.status == sdk::DeliveryStatus::delivered || recipient.status == sdk::DeliveryStatus::failed)
        continue;
      for (const std::string& key : {std::string("TOTAL"), sdk::domain_of(recipient.address)}) {
        auto& row = rows[key];
        ++row[0];
        ++row[column + 1];
      }
    }
  }
  std::cout << fmt::format("{:<32} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7}\n", "domain", "total", "<5m", "<1h", "<4h",
                           "<1d", "older");
  const auto print = [](const std::string& name, const std::array<std::size_t, 6>& row) {
    std::cout << fmt::format("{:<32} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7}\n", name, row[0], row[1], row[2], row[3],
                             row[4], row[5]);
  };
  print("TOTAL", rows["TOTAL"]);
  for (const auto& [domain, row] : rows) {
    if (domain != "TOTAL") print(domain, row);
  }
  return 0;
}

}  // namespace

void add_queue_commands(CLI::App& app, const std::string& config_file, std::function<int()>& action) {
  auto* queue = app.add_subcommand("queue", "the outbound queue")->require_subcommand(1);
  // Shared by the subcommands (only one of them runs), and alive until the chosen one's body has run.
  auto argument = std::make_shared<std::string>();
  auto on = [&action](CLI::App* command, std::function<int()> body) {
    command->callback([&action, body] { action = body; });
  };
  on(queue->add_subcommand("list", "list queued messages and where each recipient stands, oldest first"),
     [&] { return list(StoreSession(config_file).store()); });
  on(queue->add_subcommand("summary", "recipients waiting, by domain and age"),
     [&] { return summary(StoreSession(config_file).store()); });
  auto* show_command = queue->add_subcommand("show", "a queued message: envelope, status and content");
  show_command->add_option("id", *argument)->required();
  on(show_command, [&config_file, argument] { return show(StoreSession(config_file).store(), parsed_id(*argument)); });

  const auto by_id = [&](const char* name, const char* help, std::function<bool(sdk::MailStore&, std::int64_t)> act,
                         const char* done) {
    auto* command = queue->add_subcommand(name, help);
    command->add_option("id", *argument)->required();
    on(command, [&config_file, argument, act, done] {
      const std::int64_t id = parsed_id(*argument);
      if (!act(StoreSession(config_file).store(), id)) {
        std::cerr << fmt::format("tern: no queue entry {}\n", id);
        return 1;
      }
      std::cout << fmt::format("{} {}\n", id, done);
      return 0;
    });
  };
  by_id(
      "hold", "keep a message from being tried until it is released",
      [](sdk::MailStore& store, std::int64_t id) { return store.queue().hold(id, true); }, "on hold");
  by_id(
      "release", "release a held message: it is tried at once",
      [](sdk::MailStore& store, std::int64_t id) { return store.queue().hold(id, false); }, "released");
  by_id(
      "remove", "remove a message from the queue, without a bounce",
      [](sdk::MailStore& store, std::int64_t id) { return store.queue().remove(id); }, "removed");

  auto* flush = queue->add_subcommand("flush", "try queued mail now: all, or one domain's, held mail included");
  flush->add_option("domain", *argument);
  on(flush, [&config_file, argument] {
    const std::string domain = sdk::lower_ascii(*argument);
    {
      StoreSession session(config_file);
      const std::size_t due = session.store().queue().flush(domain, now_seconds());
      std::cout << fmt::format("{} message{} due now\n", due, due == 1 ? "" : "s") << std::flush;
    }
    return run_service_once(config_file, "outbound", domain);
  });
}

}  // namespace tern::cli
