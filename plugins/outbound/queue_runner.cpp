#include "queue_runner.hpp"

#include <fmt/format.h>

#include "delivery_scheduler.hpp"

namespace tern::outbound {
namespace {

// How often an idle runner looks for due mail: new mail waits at most this long before its first attempt.
constexpr auto kPollInterval = std::chrono::milliseconds(1000);
constexpr auto kBusyPause = std::chrono::milliseconds(20);
constexpr std::size_t kProgressEvery = 1000;
constexpr std::size_t kPoolThreads = 8;

}  // namespace

QueueRunner::~QueueRunner() {
  if (pool_) pool_->join();
}

boost::asio::thread_pool& QueueRunner::pool() const {
  std::call_once(pool_made_, [this] { pool_ = std::make_unique<boost::asio::thread_pool>(kPoolThreads); });
  return *pool_;
}

sdk::Task<void> QueueRunner::run(sdk::ServiceContext& context) const {
  DeliveryScheduler scheduler(context, *settings_, pool());
  while (!context.stopping()) {
    const std::size_t claimed = co_await scheduler.claim();
    co_await scheduler.write_finished();
    co_await scheduler.pause(claimed > 0 ? kBusyPause : kPollInterval);
  }
  co_await scheduler.drain();
}

sdk::Task<int> QueueRunner::run_once(sdk::ServiceContext& context, std::string target) const {
  DeliveryScheduler scheduler(context, *settings_, pool());
  std::size_t reported = 0;
  while (!context.stopping()) {
    const std::size_t claimed = co_await scheduler.claim();
    if (claimed == 0 && scheduler.in_flight() == 0) break;
    co_await scheduler.write_finished();
    const DeliveryScheduler::Totals& totals = scheduler.totals();
    if (totals.entries >= reported + kProgressEvery) {
      reported = totals.entries;
      context.log().info(
          fmt::format("flush: {} messages done so far (recipients: {} delivered, {} deferred, {} failed)",
                      totals.entries, totals.delivered, totals.deferred, totals.failed));
    }
    co_await scheduler.pause(claimed > 0 ? kBusyPause : std::chrono::milliseconds(100));
  }
  co_await scheduler.drain();
  const DeliveryScheduler::Totals& totals = scheduler.totals();
  context.log().info(fmt::format("flush{}: {} messages tried; recipients: {} delivered, {} deferred, {} failed",
                                 target.empty() ? "" : " " + target, totals.entries, totals.delivered, totals.deferred,
                                 totals.failed));
  co_return 0;
}

}  // namespace tern::outbound
