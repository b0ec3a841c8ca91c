#include "net/event_loops.hpp"

#include <spdlog/spdlog.h>

namespace tern::net {

EventLoops::EventLoops(unsigned loops, unsigned workers) : workers_(workers == 0 ? 2 : workers) {
  if (loops == 0) loops = std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 0; i < loops; ++i) {
    loops_.push_back(std::make_unique<boost::asio::io_context>(1));
    guards_.emplace_back(loops_.back()->get_executor());
  }
}

EventLoops::~EventLoops() {
  stop();
}

boost::asio::io_context& EventLoops::next() {
  return *loops_[next_.fetch_add(1) % loops_.size()];
}

void EventLoops::start() {
  for (auto& loop : loops_) {
    threads_.emplace_back([&context = *loop] {
      for (;;) {
        try {
          context.run();
          return;
        } catch (const std::exception& error) {
          // A session's own errors are handled inside it; this is a bug, and the loop must go on serving.
          spdlog::error("event loop: uncaught exception: {}", error.what());
        }
      }
    });
  }
}

void EventLoops::stop() {
  guards_.clear();
  for (auto& loop : loops_) loop->stop();
  for (auto& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
  threads_.clear();
  workers_.join();
}

}  // namespace tern::net
