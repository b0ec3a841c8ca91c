// Sessions waiting for news of a user's mail (IMAP IDLE), and the wake-up when a session changes it.
#pragma once

#include <utility>  // before Boost.Asio: Boost 1.74's awaitable.hpp needs it with g++ 12

#include <boost/asio/steady_timer.hpp>
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

  void add(const std::string& user, const std::shared_ptr<Waiter>& waiter);
  void remove(const std::string& user, const std::shared_ptr<Waiter>& waiter);
  // Wakes every waiter of these users; from any thread.
  void notify(const std::vector<std::string>& users);

 private:
  std::mutex mutex_;
  std::multimap<std::string, std::weak_ptr<Waiter>, std::less<>> waiters_;
};

}  // namespace tern::server
