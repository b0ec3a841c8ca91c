#include "group_commit.hpp"

#include <utility>

namespace tern::store_sqlite {

void GroupCommit::run(Arrival& arrival, const Commit& commit) {
  std::unique_lock lock(mutex_);
  queue_.push_back(&arrival);
  while (!arrival.done) {
    if (leading_) {
      committed_.wait(lock);
      continue;
    }
    leading_ = true;
    std::vector<Arrival*> batch = std::exchange(queue_, {});
    lock.unlock();
    commit(batch);
    lock.lock();
    for (Arrival* member : batch) member->done = true;
    leading_ = false;
    committed_.notify_all();
  }
  if (arrival.error) std::rethrow_exception(arrival.error);
}

}  // namespace tern::store_sqlite
