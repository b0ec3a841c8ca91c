// Group commit: received messages that arrive while a commit is under way wait and are committed together, so
// one fsync of the database serves every message that finished at the same moment.
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
struct Arrival {
  std::string_view message;
  const sdk::Intake* intake = nullptr;
  std::string hash;
  bool in_file = false;      // the body is a blob file (written and fsynced already), not inline
  std::exception_ptr error;  // set by the commit when this message failed
  std::uint32_t uid = 0;     // set by the commit: the UID of the (last) copy filed
  bool done = false;
};

class GroupCommit {
 public:
  using Commit = std::function<void(const std::vector<Arrival*>& batch)>;

  // Returns once `arrival` is committed, or rethrows its error. The first caller to find no commit under way
  // leads: it commits everything queued at that moment, then hands over to a waiting caller. `commit` must
  // not throw; it reports failures in each Arrival's `error`.
  void run(Arrival& arrival, const Commit& commit);

 private:
  std::mutex mutex_;
  std::condition_variable committed_;
  std::vector<Arrival*> queue_;
  bool leading_ = false;
};

}  // namespace tern::store_sqlite
