#include "server/service_context.hpp"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace tern::server {

namespace asio = boost::asio;
using boost::system::error_code;

sdk::Task<bool> ServiceContext::sleep_for(std::chrono::seconds duration) {
  // In steps of a second at most, so that a stop is noticed soon without a registry of sleepers.
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor);
  const auto end = std::chrono::steady_clock::now() + duration;
  while (!stopping()) {
    const auto left = end - std::chrono::steady_clock::now();
    if (left <= std::chrono::steady_clock::duration::zero()) co_return true;
    timer.expires_after(std::min<std::chrono::steady_clock::duration>(left, std::chrono::seconds(1)));
    error_code ignored;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  }
  co_return false;
}

}  // namespace tern::server
