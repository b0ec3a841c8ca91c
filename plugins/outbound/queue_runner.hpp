// The outbound service: takes due entries off the store's queue, sends each recipient the way its route says,
// writes back what happened, schedules retries and sends the delivery status notifications.
#pragma once

#include <utility>  // before Boost.Asio: Boost 1.74's awaitable.hpp needs it with g++ 12

#include <boost/asio/thread_pool.hpp>
#include <memory>
#include <mutex>
#include <string>

#include "outbound_settings.hpp"
#include "tern/sdk/service.hpp"

namespace tern::outbound {

class QueueRunner final : public sdk::Service {
 public:
  explicit QueueRunner(std::shared_ptr<const Settings> settings) : settings_(std::move(settings)) {}
  ~QueueRunner() override;

  std::string name() const override { return "outbound"; }
  // Polls the queue every second and keeps delivering until stopped.
  sdk::Task<void> run(sdk::ServiceContext& context) const override;
  // `tern queue flush [DOMAIN]`: delivers everything due now (the flush made it due, and released DOMAIN's
  // held mail), with progress lines, and returns 0.
  sdk::Task<int> run_once(sdk::ServiceContext& context, std::string target) const override;

 private:
  std::shared_ptr<const Settings> settings_;
  // Threads for pipe programs, made when the first run starts (not for a generation that
  // never serves). Their number bounds how many pipe programs run at once.
  mutable std::unique_ptr<boost::asio::thread_pool> pool_;
  mutable std::once_flag pool_made_;
  boost::asio::thread_pool& pool() const;
};

}  // namespace tern::outbound
