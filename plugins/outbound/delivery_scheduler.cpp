#include "delivery_scheduler.hpp"

#include <fmt/format.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <ctime>

#include "intake.hpp"
#include "pipe_program.hpp"
#include "route_hook_context.hpp"
#include "smtp_delivery.hpp"
#include "tern/sdk/address.hpp"

namespace tern::outbound {
namespace {

using Outcome = RecipientResult::Outcome;
namespace asio = boost::asio;

constexpr std::size_t kClaimBatch = 500;
constexpr std::size_t kMaxInFlight = 2000;
constexpr std::size_t kWriteBatch = 200;
// Longer than any delivery should take; an entry whose deliverer died is handed out again after it.
constexpr std::int64_t kLease = 3600;
// How long an idle worker keeps its connection for more jobs to the same destination.
constexpr auto kLinger = std::chrono::milliseconds(1500);
constexpr auto kLingerStep = std::chrono::milliseconds(50);

std::int64_t now_seconds() {
  return static_cast<std::int64_t>(std::time(nullptr));
}

// Where a notice for `recipient` goes: to that user (or, when the user is gone, the postmaster of their domain), or
// out to the address. Empty when nobody here receives it. Reads the directory: call it off the loop.
intake::Destinations notice_destinations(sdk::Directory& directory, std::string_view hostname,
                                         const std::string& recipient) {
  sdk::Recipient to{recipient, "", ""};
  intake::Resolution resolution = intake::resolve(directory, hostname, to);
  if (resolution.nobody()) {
    to = {"postmaster@" + sdk::domain_of(recipient), "", ""};
    resolution = intake::resolve(directory, hostname, to);
  }
  intake::Destinations destinations;
  if (!resolution.nobody()) destinations.add(to, resolution);
  return destinations;
}

}  // namespace

sdk::Task<std::size_t> DeliveryScheduler::claim() {
  executor_ = co_await asio::this_coro::executor;
  if (in_flight_.size() >= kMaxInFlight) co_return 0;
  sdk::MailStore& store = context_.store();
  const std::int64_t now = now_seconds();
  const std::size_t limit = std::min(kClaimBatch, kMaxInFlight - in_flight_.size());
  std::vector<sdk::QueueEntry> entries =
      co_await context_.blocking([&store, now, limit] { return store.queue().claim(now, now + kLease, limit); });
  std::size_t claimed = 0;
  for (sdk::QueueEntry& entry : entries) {
    if (in_flight_.contains(entry.id)) continue;
    ++claimed;
    co_await admit(std::move(entry));
  }
  start_workers();
  co_return claimed;
}

sdk::Task<const Route*> DeliveryScheduler::choose_route(EntryInFlight& entry, std::size_t index) {
  sdk::QueueRecipient& recipient = entry.entry.recipients[index];
  RouteHookContext hook_context(entry.entry, recipient.address);
  const sdk::Verdict verdict = co_await context_.run_hooks(sdk::Stage::route, hook_context);
  const std::string reply = fmt::format("{} {} {}", verdict.code, verdict.enhanced, verdict.text);
  switch (verdict.kind) {
    case sdk::VerdictKind::route: {
      const Route* named = settings_.route_named(verdict.route);
      if (named != nullptr) co_return named;
      context_.log().error(fmt::format("outbound: a route hook chose \"{}\", which no route is named", verdict.route));
      entry.results[index] = {Outcome::temporary, "4.3.5 a route hook chose an unknown route: " + verdict.route};
      co_return nullptr;
    }
    case sdk::VerdictKind::reject: entry.results[index] = {Outcome::permanent, reply}; co_return nullptr;
    case sdk::VerdictKind::defer:
    case sdk::VerdictKind::disconnect: entry.results[index] = {Outcome::temporary, reply}; co_return nullptr;
    case sdk::VerdictKind::discard:
      entry.results[index] = {Outcome::delivered, "2.0.0 discarded by a route hook"};
      co_return nullptr;
    case sdk::VerdictKind::quarantine:
    case sdk::VerdictKind::accept:
    case sdk::VerdictKind::next: break;
  }
  co_return &settings_.route_for(sdk::domain_of(recipient.address));
}

sdk::Task<void> DeliveryScheduler::admit(sdk::QueueEntry queued) {
  auto entry = std::make_shared<EntryInFlight>();
  entry->results.resize(queued.recipients.size());
  entry->entry = std::move(queued);
  in_flight_.insert(entry->entry.id);
  const std::int64_t now = now_seconds();
  const bool expired = now >= entry->entry.created + settings_.expire_after.count();
  // By destination key: the job, and the route and domain of its destination.
  std::map<std::string, std::pair<Job, std::pair<const Route*, std::string>>> jobs;
  for (std::size_t index = 0; index < entry->entry.recipients.size(); ++index) {
    sdk::QueueRecipient& recipient = entry->entry.recipients[index];
    if (recipient.status == sdk::DeliveryStatus::delivered || recipient.status == sdk::DeliveryStatus::failed) {
      continue;
    }
    const Route* chosen = co_await choose_route(*entry, index);
    if (chosen == nullptr) continue;  // the hook decided
    if (chosen->via == Route::Via::hold) {
      if (expired) {
        entry->results[index] = {Outcome::permanent,
                                 "4.4.7 held for its domain longer than the queue keeps mail, and never released"};
        continue;
      }
      if (recipient.status != sdk::DeliveryStatus::released) {
        recipient.status = sdk::DeliveryStatus::held;
        continue;
      }
      chosen = chosen->released.get();
    } else {
      recipient.status = sdk::DeliveryStatus::pending;
    }
    const Route& route = *chosen;
    const std::string domain = sdk::domain_of(recipient.address);
    std::string key = route.via == Route::Via::mx ? "mx:" + domain
                                                  : fmt::format("{}@{}", route.name, static_cast<const void*>(&route));
    // A pipe program gets one recipient a run, as its environment names one.
    if (route.via == Route::Via::pipe) key += "\n" + std::to_string(index);
    auto& [job, where] = jobs[key];
    job.entry = entry;
    job.recipients.push_back(index);
    where = {&route, domain};
  }
  // Destinations are found or made only now, after the last suspension: a worker may have ended one meanwhile.
  for (auto& [key, planned] : jobs) {
    auto& [job, where] = planned;
    Destination& destination = destinations_[key];
    if (destination.key.empty()) {
      destination.key = key;
      destination.route = where.first;
      destination.domain = where.second;
    }
    ++entry->open_jobs;
    destination.jobs.push_back(std::move(job));
  }
  if (entry->open_jobs == 0) finish(entry);
}

void DeliveryScheduler::start_workers() {
  if (context_.stopping()) return;  // drain() hands what is left back to the queue
  for (auto& [key, destination] : destinations_) {
    while (workers_ < settings_.connections && destination.workers < settings_.connections_per_destination &&
           destination.workers < destination.jobs.size()) {
      ++workers_;
      ++destination.workers;
      asio::co_spawn(executor_, work(key), asio::detached);
    }
  }
}

sdk::Task<void> DeliveryScheduler::work(std::string key) {
  Destination& destination = destinations_.at(key);
  try {
    co_await run_jobs(destination);
  } catch (const std::exception& error) {
    context_.log().error(fmt::format("outbound: delivery to {} failed: {}", key, error.what()));
  }
  --workers_;
  if (--destination.workers == 0 && destination.jobs.empty()) destinations_.erase(key);
  start_workers();
}

sdk::Task<void> DeliveryScheduler::run_jobs(Destination& destination) {
  const Route& route = *destination.route;
  SmtpDelivery smtp(context_, settings_, destination);
  sdk::MailStore& store = context_.store();
  while (!context_.stopping()) {
    if (destination.jobs.empty()) {
      // The next claim may bring more for this destination: keep the connection a moment for it.
      for (auto waited = std::chrono::milliseconds(0); destination.jobs.empty() && waited < kLinger;
           waited += kLingerStep) {
        if (context_.stopping()) break;
        co_await pause(kLingerStep);
      }
      if (destination.jobs.empty()) break;
    }
    Job job = std::move(destination.jobs.front());
    destination.jobs.pop_front();
    const std::int64_t id = job.entry->entry.id;
    std::string message;
    const std::optional<std::string> unreadable =
        co_await context_.attempt([&store, &message, id] { message = store.queue().read(id); });
    if (unreadable) {
      for (std::size_t index : job.recipients) job.set(index, Outcome::temporary, "4.3.0 " + *unreadable);
    } else if (route.via == Route::Via::pipe) {
      const std::size_t index = job.recipients.front();
      const sdk::QueueRecipient& recipient = job.entry->entry.recipients[index];
      std::vector<std::string> environment{"SENDER=" + job.entry->entry.sender, "RECIPIENT=" + recipient.address,
                                           "ORIGINAL_RECIPIENT=" + recipient.orcpt};
      const PipeOutcome outcome =
          co_await on_pool(pool_, [&] { return run_pipe_program(route.command, environment, message, route.timeout); });
      job.set(index,
              outcome.kind == PipeOutcome::Kind::delivered   ? Outcome::delivered
              : outcome.kind == PipeOutcome::Kind::permanent ? Outcome::permanent
                                                             : Outcome::temporary,
              outcome.diagnostic);
    } else {
      std::optional<std::string> failure;
      try {
        co_await smtp.deliver(job, message);
      } catch (const std::exception& error) {
        failure = error.what();
      }
      if (failure) {
        context_.log().error(fmt::format("outbound: delivery of {} to {} failed: {}", id, destination.key, *failure));
        smtp.abandon();
        for (std::size_t index : job.recipients) {
          if (job.entry->results[index].outcome == Outcome::untried) {
            job.set(index, Outcome::temporary, "4.3.0 local delivery error: " + *failure);
          }
        }
      }
    }
    job_done(job);
    if (finished_.size() >= kWriteBatch && !writing_) co_await write_back();
  }
  co_await smtp.close();
}

void DeliveryScheduler::job_done(Job& job) {
  if (--job.entry->open_jobs == 0) finish(job.entry);
}

void DeliveryScheduler::finish(const std::shared_ptr<EntryInFlight>& flight) {
  sdk::QueueEntry& entry = flight->entry;
  in_flight_.erase(entry.id);
  const std::int64_t now = now_seconds();
  const bool expired = now >= entry.created + settings_.expire_after.count();
  bool tried = false;
  bool waiting = false;  // something is left to try later
  bool held = false;
  DsnReport failures;
  DsnReport delays;
  DsnReport successes;
  for (std::size_t index = 0; index < entry.recipients.size(); ++index) {
    sdk::QueueRecipient& recipient = entry.recipients[index];
    const RecipientResult& result = flight->results[index];
    if (result.outcome == Outcome::untried) {
      held = held || recipient.status == sdk::DeliveryStatus::held;
      waiting = waiting || recipient.status == sdk::DeliveryStatus::pending ||
                recipient.status == sdk::DeliveryStatus::released;
      continue;
    }
    tried = true;
    recipient.diagnostic = result.diagnostic;
    recipient.remote_host = result.remote_host;
    const DsnRecipient notice{recipient.address, recipient.orcpt, "", result.diagnostic, result.remote_host};
    const std::string verb = result.outcome == Outcome::delivered              ? "delivered"
                             : result.outcome == Outcome::permanent || expired ? "bounced"
                                                                               : "deferred";
    context_.log().info(fmt::format("outbound: {} to <{}> {}{}: {}", entry.id, recipient.address, verb,
                                    result.remote_host.empty() ? "" : " via " + result.remote_host, result.diagnostic));
    if (result.outcome == Outcome::delivered) {
      recipient.status = sdk::DeliveryStatus::delivered;
      ++totals_.delivered;
      if (notify_wants(recipient.notify, "SUCCESS") && !result.notice_passed_on) {
        successes.recipients.push_back(notice);
        successes.recipients.back().action = result.remote_host.empty() ? "delivered" : "relayed";
      }
    } else if (result.outcome == Outcome::permanent || expired) {
      recipient.status = sdk::DeliveryStatus::failed;
      ++totals_.failed;
      if (notify_wants(recipient.notify, "FAILURE")) {
        failures.recipients.push_back(notice);
        failures.recipients.back().action = "failed";
      }
    } else {
      // Released mail that still cannot go waits for the next flush of its domain.
      if (recipient.status == sdk::DeliveryStatus::released) {
        recipient.status = sdk::DeliveryStatus::held;
        held = true;
      } else {
        recipient.status = sdk::DeliveryStatus::pending;
        waiting = true;
      }
      ++totals_.deferred;
      if (notify_wants(recipient.notify, "DELAY")) {
        delays.recipients.push_back(notice);
        delays.recipients.back().action = "delayed";
      }
    }
  }
  ++totals_.entries;
  if (tried) ++entry.attempts;
  if (waiting) {
    entry.next_attempt = tried ? now + settings_.retry_delay(entry.attempts).count() : now;
  } else if (held) {
    // Held mail is tried when its domain is flushed. It comes due by itself to expire, and now and then to
    // follow a route that is no longer `hold`.
    entry.next_attempt =
        std::min(entry.created + settings_.expire_after.count(), now + settings_.retry_after.back().count());
  }
  std::optional<DsnReport> notice = choose_notice(entry, std::move(failures), std::move(delays), std::move(successes));
  finished_.push_back({std::move(entry), std::move(notice)});
}

std::optional<DsnReport> DeliveryScheduler::choose_notice(sdk::QueueEntry& entry, DsnReport failures, DsnReport delays,
                                                          DsnReport successes) {
  const bool delay_due = settings_.delay_warning_after.count() > 0 && !entry.delay_notified &&
                         now_seconds() >= entry.created + settings_.delay_warning_after.count();
  std::optional<DsnReport> notice;
  // One notice an attempt, the most urgent: failures, else a first delay, else successes.
  if (!failures.recipients.empty()) {
    notice = std::move(failures);
  } else if (delay_due && !delays.recipients.empty()) {
    notice = std::move(delays);
    entry.delay_notified = true;
  } else if (!successes.recipients.empty()) {
    notice = std::move(successes);
  }
  if (notice && entry.sender.empty()) {
    context_.log().warn(
        fmt::format("outbound: {} is a notice itself (null sender): no notice about it is sent", entry.id));
    notice.reset();
  }
  if (notice) {
    notice->reporting_host = std::string(context_.hostname());
    notice->sender = entry.sender;
    notice->envid = entry.envid;
    notice->ret = entry.ret;
    notice->arrival = entry.created;
  }
  return notice;
}

sdk::Task<void> DeliveryScheduler::file_notice(const sdk::QueueEntry& entry, const DsnReport& report) {
  sdk::MailStore& store = context_.store();
  const std::string hostname(context_.hostname());
  std::string original;
  intake::Destinations destinations;
  const std::optional<std::string> unread = co_await context_.attempt([&] {
    original = store.queue().read(entry.id);
    destinations = notice_destinations(store.directory(), hostname, report.sender);
  });
  if (unread) {
    context_.log().error(fmt::format("outbound: no delivery notice for {}: {}", entry.id, *unread));
    co_return;
  }
  if (destinations.users.empty() && destinations.remote.empty()) {
    context_.log().error(fmt::format(
        "outbound: a delivery notice for <{}> has nobody to go to (no such user, no postmaster)", report.sender));
    co_return;
  }
  // From the null sender (RFC 3464), so that a notice never bounces itself.
  intake::Incoming incoming;
  incoming.origin = intake::Origin::server;
  incoming.client = {"outbound", "local", "127.0.0.1", 0, {}, false, {}};
  incoming.envelope.recipients = {{report.sender, "", ""}};
  incoming.envelope.smtputf8 = !sdk::is_ascii(report.sender);
  incoming.destinations = std::move(destinations);
  incoming.name = fmt::format("notice about {}", entry.id);
  incoming.message = compose_dsn(report, original, now_seconds());
  const intake::Outcome outcome = co_await intake::receive(context_, std::move(incoming));
  if (!outcome.accepted()) {
    context_.log().error(fmt::format("outbound: no delivery notice for {}: {} {} {}", entry.id, outcome.reply.code,
                                     outcome.reply.enhanced, outcome.reply.text));
  }
}

sdk::Task<void> DeliveryScheduler::write_back() {
  writing_ = true;
  while (!finished_.empty()) {
    std::vector<Finished> batch = std::move(finished_);
    finished_.clear();
    // Notices first: a crash between the two then repeats a notice instead of losing one. Each notice on its
    // own: an entry removed meanwhile (`tern queue remove`) has none, and takes nobody else's with it.
    std::vector<sdk::QueueEntry> entries;
    for (Finished& done : batch) {
      if (done.notice) {
        co_await file_notice(done.entry, *done.notice);
        done.notice.reset();
      }
      entries.push_back(done.entry);
    }
    sdk::Queue& queue = context_.store().queue();
    const std::optional<std::string> failure = co_await context_.attempt([&] { queue.update(entries); });
    if (failure) {
      // Kept to be written again, unless the server is going away: then their leases bring them back later
      // (and what was delivered is sent twice).
      context_.log().error(
          fmt::format("outbound: writing back {} finished entries failed: {}", batch.size(), *failure));
      if (context_.stopping()) break;
      for (Finished& done : batch) finished_.push_back(std::move(done));
      co_await pause(std::chrono::seconds(1));
    }
  }
  writing_ = false;
}

sdk::Task<void> DeliveryScheduler::pause(std::chrono::milliseconds duration) {
  const auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor, duration);
  boost::system::error_code ignored;
  co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
}

sdk::Task<void> DeliveryScheduler::drain() {
  while (workers_ > 0 || writing_) co_await pause(std::chrono::milliseconds(20));
  // Stopped with jobs left: their entries go back untouched (lease ended, due now).
  for (auto& [key, destination] : destinations_) {
    while (!destination.jobs.empty()) {
      Job job = std::move(destination.jobs.front());
      destination.jobs.pop_front();
      job_done(job);
    }
  }
  destinations_.clear();
  co_await write_back();
}

}  // namespace tern::outbound
