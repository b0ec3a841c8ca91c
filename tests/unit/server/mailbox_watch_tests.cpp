#include <utility>  // before Boost.Asio: Boost 1.74's awaitable.hpp needs it with g++ 12

#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <memory>

#include "server/mailbox_watch.hpp"

using tern::server::MailboxWatch;

TEST_CASE("News that comes between two waits is not lost: the next wait sees it at once") {
  MailboxWatch watch;
  boost::asio::io_context loop;
  const std::uint64_t seen = watch.version("alice@example.test");
  // The session looks at the mailbox; meanwhile another session expunges and says so.
  watch.notify({"alice@example.test"});
  auto late = std::make_shared<MailboxWatch::Waiter>(loop.get_executor());
  CHECK_FALSE(watch.add("alice@example.test", late, seen));
  // Up to date, it waits; news for somebody else does not wake it, news for alice does.
  auto waiter = std::make_shared<MailboxWatch::Waiter>(loop.get_executor());
  REQUIRE(watch.add("alice@example.test", waiter, watch.version("alice@example.test")));
  watch.notify({"bob@example.test"});
  loop.run();
  CHECK_FALSE(waiter->changed);
  watch.notify({"alice@example.test"});
  loop.restart();
  loop.run();
  CHECK(waiter->changed);
  watch.remove("alice@example.test", waiter);
  CHECK(watch.version("alice@example.test") == seen + 2);
}
