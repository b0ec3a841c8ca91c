// Pipe programs run on a pool of the outbound service's own: each can take seconds, and the server's worker pool
// serves every session's store calls and logins.
#pragma once

#include <utility>  // before Boost.Asio: Boost 1.74's awaitable.hpp needs it with g++ 12

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <type_traits>

#include "tern/sdk/protocol.hpp"

namespace tern::outbound {

// Runs `work` on `pool` and resumes the caller on its own loop with the result. `work` should capture by
// reference only (g++ 12 mishandles a lambda's by-value captures in a co_await operand).
template <typename Work>
sdk::Task<std::invoke_result_t<Work&>> on_pool(boost::asio::thread_pool& pool, Work work) {
  using Result = std::invoke_result_t<Work&>;
  const Result result = co_await boost::asio::co_spawn(
      pool.get_executor(), [&work]() -> sdk::Task<Result> { co_return work(); }, boost::asio::use_awaitable);
  co_return result;
}

}  // namespace tern::outbound
