// Group commit: deliveries that arrive while one is being committed wait and are committed together, so one
// fsync of the database serves every message that finished at the same moment.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "tern/sdk/store.hpp"

namespace tern::store_sqlite {

// One received message, for mailboxes and the outbound queue, on its way into a batch.
struct Delivery {
  std::string_view message;
  const sdk::Intake* intake = nullptr;
  std::string hash;
  bool in_file = false;      // the body is a blob file (written and fsynced already), not inline
  std::exception_ptr error;  // set by the commit when this delivery failed
  std::uint32_t uid = 0;     // set by the commit: the UID of the (last) copy filed
  bool done = false;
};

class DeliveryBatcher {
 public:
  using Commit = std::function<void(const std::vector<Delivery*>& batch)>;

  // Returns once `delivery` is committed, or rethrows its error. The first caller to find no commit under way
  // leads: it commits everything queued at that moment, then hands over to a waiting caller. `commit` must
  // not throw; it reports failures in each Delivery's `error`.
  void run(Delivery& delivery, const Commit& commit);

 private:
  std::mutex mutex_;
  std::condition_variable committed_;
  std::vector<Delivery*> queue_;
  bool leading_ = false;
};

}  // namespace tern::store_sqlite
