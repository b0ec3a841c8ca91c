#include "server/mailbox_watch.hpp"

#include <boost/asio/post.hpp>

namespace tern::server {

std::uint64_t MailboxWatch::version(const std::string& user) {
  std::lock_guard lock(mutex_);
  const auto found = versions_.find(user);
  return found == versions_.end() ? 0 : found->second;
}

bool MailboxWatch::add(const std::string& user, const std::shared_ptr<Waiter>& waiter, std::uint64_t seen) {
  std::lock_guard lock(mutex_);
  const auto found = versions_.find(user);
  if ((found == versions_.end() ? 0 : found->second) != seen) return false;
  waiters_.emplace(user, waiter);
  return true;
}

void MailboxWatch::remove(const std::string& user, const std::shared_ptr<Waiter>& waiter) {
  std::lock_guard lock(mutex_);
  auto [begin, end] = waiters_.equal_range(user);
  for (auto it = begin; it != end;) {
    auto held = it->second.lock();
    it = !held || held == waiter ? waiters_.erase(it) : std::next(it);
  }
}

void MailboxWatch::notify(const std::vector<std::string>& users) {
  std::lock_guard lock(mutex_);
  for (const std::string& user : users) {
    ++versions_[user];
    auto [begin, end] = waiters_.equal_range(user);
    for (auto it = begin; it != end; ++it) {
      if (auto waiter = it->second.lock()) {
        boost::asio::post(waiter->timer.get_executor(), [weak = it->second] {
          if (auto target = weak.lock()) {
            target->changed = true;
            target->timer.cancel();
          }
        });
      }
    }
  }
}

}  // namespace tern::server
