// Sessions waiting for news of a user's mail (IMAP IDLE), and the wake-up when a session changes it.
#pragma once

#include <utility>  // before Boost.Asio: Boost 1.74's awaitable.hpp needs it with g++ 12

#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace tern::server {

class MailboxWatch {
 public:
  // One waiting session: its timer is cancelled, on its own loop, when something wakes it.
  struct Waiter {
    explicit Waiter(const boost::asio::any_io_executor& executor) : timer(executor) {}
    boost::asio::steady_timer timer;
    bool changed = false;
    bool readable = false;
  };

  // How many times notify() named `user` so far. A session keeps it from one wait to the next: news that came
  // in between, while it was not registered, must still wake it.
  std::uint64_t version(const std::string& user);
  // Registers `waiter`, unless `user`'s version is no longer `seen`: then it returns false and the caller
  // looks at once.
  bool add(const std::string& user, const std::shared_ptr<Waiter>& waiter, std::uint64_t seen);
  void remove(const std::string& user, const std::shared_ptr<Waiter>& waiter);
  // Wakes every waiter of these users; from any thread.
  void notify(const std::vector<std::string>& users);

 private:
  std::mutex mutex_;
  std::multimap<std::string, std::weak_ptr<Waiter>, std::less<>> waiters_;
  std::map<std::string, std::uint64_t, std::less<>> versions_;
};

}  // namespace tern::server
