// One event loop per core, each on its own thread, plus a pool for blocking work. Asio stays in net/ and
// server/: nothing else includes this header.
#pragma once

#include <utility>  // before Boost.Asio: Boost 1.74's awaitable.hpp needs it with g++ 12

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <memory>
#include <thread>
#include <vector>

namespace tern::net {

class EventLoops {
 public:
  // loops: 0 means one per core.
  EventLoops(unsigned loops, unsigned workers);
  ~EventLoops();
  EventLoops(const EventLoops&) = delete;
  EventLoops& operator=(const EventLoops&) = delete;

  // Round-robin: the loop the next connection lives on.
  boost::asio::io_context& next();
  boost::asio::thread_pool& workers() { return workers_; }
  std::size_t size() const { return loops_.size(); }

  void start();
  // Stops every loop (pending handlers are dropped) and joins their threads and the workers.
  void stop();

 private:
  using Guard = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;
  std::vector<std::unique_ptr<boost::asio::io_context>> loops_;
  std::vector<Guard> guards_;
  std::vector<std::thread> threads_;
  boost::asio::thread_pool workers_;
  std::atomic<std::size_t> next_{0};
};

}  // namespace tern::net
