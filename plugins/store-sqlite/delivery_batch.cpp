#include "delivery_batch.hpp"

#include <utility>

namespace tern::store_sqlite {

void DeliveryBatcher::run(Delivery& delivery, const Commit& commit) {
  std::unique_lock lock(mutex_);
  queue_.push_back(&delivery);
  while (!delivery.done) {
    if (leading_) {
      committed_.wait(lock);
      continue;
    }
    leading_ = true;
    std::vector<Delivery*> batch = std::exchange(queue_, {});
    lock.unlock();
    commit(batch);
    lock.lock();
    for (Delivery* member : batch) member->done = true;
    leading_ = false;
    committed_.notify_all();
  }
  if (delivery.error) std::rethrow_exception(delivery.error);
}

}  // namespace tern::store_sqlite
