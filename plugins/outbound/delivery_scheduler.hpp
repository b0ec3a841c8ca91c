// Spreads claimed queue entries over destinations and runs their deliveries with bounded concurrency: at most
// `connections_per_destination` workers per destination and `connections` in all, each worker keeping its
// connection from job to job. Finished entries are written back to the store in batches, bounces first.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "delivery_job.hpp"
#include "dsn.hpp"
#include "outbound_pool.hpp"
#include "tern/sdk/service.hpp"

namespace tern::outbound {

class DeliveryScheduler {
 public:
  DeliveryScheduler(sdk::ServiceContext& context, const Settings& settings, boost::asio::thread_pool& pool)
      : context_(context), settings_(settings), pool_(pool) {}

  // Claims what is due and starts delivering it; returns how many entries it claimed. Entries already in
  // flight are not claimed twice.
  sdk::Task<std::size_t> claim();
  std::size_t in_flight() const { return in_flight_.size(); }
  // Waits until every claimed entry is finished and written back (or, once stopping, abandoned to the next
  // run with its lease ended).
  sdk::Task<void> drain();
  // Writes back the entries finished so far, unless a write is under way already.
  sdk::Task<void> write_finished() {
    if (!writing_ && !finished_.empty()) co_await write_back();
  }
  sdk::Task<void> pause(std::chrono::milliseconds duration);

  struct Totals {
    std::size_t entries = 0, delivered = 0, deferred = 0, failed = 0;
  };
  const Totals& totals() const { return totals_; }

 private:
  sdk::Task<void> admit(sdk::QueueEntry entry);
  // The route of one recipient: what the hooks at `route` chose, else the configured one. Null when a hook
  // decided the recipient's fate itself (recorded in its result).
  sdk::Task<const Route*> choose_route(EntryInFlight& entry, std::size_t index);
  void start_workers();
  sdk::Task<void> work(std::string key);
  sdk::Task<void> run_jobs(Destination& destination);
  void job_done(Job& job);
  void finish(const std::shared_ptr<EntryInFlight>& entry);
  sdk::Task<void> write_back();
  // The one notice an attempt sends its sender, the most urgent: failures, else a first delay, else successes;
  // none for a notice itself (the null sender). Marks the entry when it is the delay warning.
  std::optional<DsnReport> choose_notice(sdk::QueueEntry& entry, DsnReport failures, DsnReport delays,
                                         DsnReport successes);
  // Files the notice a finished entry owes its sender, through the intake step (the `deliver` hooks of a local
  // recipient run); a notice that cannot be filed is logged, and the entry is written back all the same.
  sdk::Task<void> file_notice(const sdk::QueueEntry& entry, const DsnReport& report);

  sdk::ServiceContext& context_;
  boost::asio::any_io_executor executor_;  // the service's loop, where workers run
  const Settings& settings_;
  boost::asio::thread_pool& pool_;  // pipe programs: they may run for seconds
  std::map<std::string, Destination> destinations_;
  std::set<std::int64_t> in_flight_;
  std::size_t workers_ = 0;
  bool writing_ = false;
  // Entries done with, to write back; each with the notice its sender gets first, if any.
  struct Finished {
    sdk::QueueEntry entry;
    std::optional<DsnReport> notice;
  };
  std::vector<Finished> finished_;
  Totals totals_;
};

}  // namespace tern::outbound
