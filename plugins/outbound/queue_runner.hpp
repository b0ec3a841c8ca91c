// The outbound service: takes due entries off the store's queue, sends each recipient the way its route says,
// writes back what happened, schedules retries and sends the delivery status notifications.
#pragma once

#include <memory>
#include <string>

#include "dns_resolver.hpp"
#include "outbound_settings.hpp"
#include "tern/sdk/service.hpp"

namespace tern::outbound {

class QueueRunner final : public sdk::Service {
 public:
  QueueRunner(std::shared_ptr<const Settings> settings, std::shared_ptr<DnsResolver> resolver)
      : settings_(std::move(settings)), resolver_(std::move(resolver)) {}

  std::string name() const override { return "outbound"; }
  // Polls the queue every second and keeps delivering until stopped.
  sdk::Task<void> run(sdk::ServiceContext& context) const override;
  // `tern queue flush [DOMAIN]`: delivers everything due now (the flush made it due), with progress, and
  // returns 0, or 1 when something was deferred.
  sdk::Task<int> run_once(sdk::ServiceContext& context, std::string target) const override;

 private:
  std::shared_ptr<const Settings> settings_;
  std::shared_ptr<DnsResolver> resolver_;
};

}  // namespace tern::outbound
