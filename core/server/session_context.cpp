#include "server/session_context.hpp"

#include <fmt/format.h>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "auth/password.hpp"
#include "net/tcp_connection.hpp"
#include "tern/sdk/text.hpp"

namespace tern::server {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

namespace {

// Runs `work` on the pool, then completes on the handler's own executor (the session's loop), handing over
// the exception the work threw, if any.
template <typename Token>
auto async_run_on(asio::thread_pool& pool, std::function<void()> work, Token&& token) {
  return asio::async_initiate<Token, void(std::exception_ptr)>(
      [&pool](auto handler, std::function<void()> job) {
        auto executor = asio::get_associated_executor(handler);
        asio::post(pool, [job = std::move(job), handler = std::move(handler), executor]() mutable {
          std::exception_ptr error;
          try {
            job();
          } catch (...) {
            error = std::current_exception();
          }
          asio::post(executor, [handler = std::move(handler), error]() mutable { handler(error); });
        });
      },
      token, std::move(work));
}

}  // namespace

SessionContext::SessionContext(std::shared_ptr<const loader::Generation> generation, sdk::MailStore& store,
                               asio::thread_pool& workers, auth::AuthThrottle& throttle, auth::LoginCache& logins,
                               MailboxWatch& watch, dns::Resolver& resolver, metrics::Counters& counters,
                               std::shared_ptr<boost::asio::ssl::context> client_tls, const std::atomic<bool>& stopping,
                               std::string session_id)
    : generation_(std::move(generation)),
      store_(store),
      workers_(workers),
      throttle_(throttle),
      logins_(logins),
      watch_(watch),
      resolver_(resolver),
      counters_(counters),
      client_tls_(std::move(client_tls)),
      stopping_(stopping),
      log_(std::move(session_id)) {}

sdk::Task<sdk::Verdict> SessionContext::run_hooks(sdk::Stage stage, sdk::HookContext& context) {
  return generation_->hooks.run(stage, context, *this);
}

sdk::Task<void> SessionContext::offload(std::function<void()> work) {
  co_await async_run_on(workers_, std::move(work), asio::use_awaitable);
}

sdk::Task<sdk::LoginResult> SessionContext::authenticate(const sdk::ClientInfo& client, std::string_view user,
                                                         std::string_view password) {
  if (throttle_.blocked(client.address)) {
    log_.warn(fmt::format("login refused for {} from {}: too many recent failures", user, client.address));
    co_return sdk::LoginResult{sdk::LoginResult::Status::blocked, {}};
  }
  std::string address(user);
  std::string secret(password);
  std::optional<std::string> hash;
  bool matches = false;
  try {
    matches = co_await blocking([&] {
      hash = store_.directory().password_hash(address);
      // A login verified lately skips argon2id; the stored hash is read every time, so a changed password or
      // a removed user takes effect at once.
      if (hash && logins_.verified(address, *hash, secret)) return true;
      // An unknown user costs as much as a known one, so timing does not tell which addresses exist.
      static const std::string decoy = auth::hash_password("decoy");
      const bool verified = auth::verify_password(hash ? *hash : decoy, secret) && hash.has_value();
      if (verified) logins_.remember(address, *hash, secret);
      return verified;
    });
  } catch (const std::exception& error) {
    log_.error(fmt::format("login check for {} failed: {}", address, error.what()));
  }
  if (matches) {
    co_return sdk::LoginResult{sdk::LoginResult::Status::ok, sdk::lower_ascii(address)};
  }
  log_.warn(fmt::format("authentication failed for {} from {}", address, client.address));
  // The answer waits, so that guessing passwords is slow; the pause grows with the address's failures.
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer pause(executor, throttle_.record_failure(client.address));
  co_await pause.async_wait(asio::use_awaitable);
  co_return sdk::LoginResult{sdk::LoginResult::Status::failed, {}};
}

sdk::Task<sdk::WakeReason> SessionContext::wait_for_news(sdk::Connection& connection, std::string_view user,
                                                         std::chrono::seconds limit) {
  // Every Connection a session gets is the core's own.
  auto& tcp = static_cast<net::TcpConnection&>(connection);
  if (tcp.stopping()) co_return sdk::WakeReason::stopping;
  if (tcp.input_pending()) co_return sdk::WakeReason::input;
  const std::string watched(user);
  // News since the session's last look wakes it at once. Before its first wait the core cannot know when it
  // last looked, so any news since the start counts: at worst one look too many.
  const std::uint64_t seen = news_seen_ && news_seen_->first == watched ? news_seen_->second : 0;
  auto executor = co_await asio::this_coro::executor;
  auto waiter = std::make_shared<MailboxWatch::Waiter>(executor);
  waiter->timer.expires_after(limit);
  if (!watch_.add(watched, waiter, seen)) {
    news_seen_.emplace(watched, watch_.version(watched));
    co_return sdk::WakeReason::mailbox_changed;
  }
  tcp.wait_readable([weak = std::weak_ptr(waiter)](const boost::system::error_code&) {
    // Data, or the wait was interrupted (shutdown): either way the session has to look.
    if (auto target = weak.lock()) {
      target->readable = true;
      target->timer.cancel();
    }
  });
  boost::system::error_code ignored;
  co_await waiter->timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  watch_.remove(watched, waiter);
  tcp.cancel_wait_readable();
  if (tcp.stopping()) co_return sdk::WakeReason::stopping;
  // Input first: the session reads it without looking at the mailbox, so news stays unseen for its next wait.
  if (waiter->readable) co_return sdk::WakeReason::input;
  const std::uint64_t now = watch_.version(watched);
  if (!waiter->changed && now == seen) co_return sdk::WakeReason::timeout;
  // The session looks now, and what it reads includes every change notified so far.
  news_seen_.emplace(watched, now);
  co_return sdk::WakeReason::mailbox_changed;
}

sdk::Task<std::shared_ptr<sdk::Connection>> SessionContext::connect(std::string host, std::uint16_t port,
                                                                    sdk::ClientTls tls, std::string& error) {
  auto executor = co_await asio::this_coro::executor;
  tcp::resolver resolver(executor);
  error_code failure;
  const tcp::resolver::results_type addresses =
      co_await resolver.async_resolve(host, std::to_string(port), asio::redirect_error(asio::use_awaitable, failure));
  if (failure) {
    error = "cannot resolve " + host + ": " + failure.message();
    co_return nullptr;
  }
  tcp::socket socket(executor);
  asio::steady_timer deadline(executor, std::chrono::seconds(30));
  deadline.async_wait([&socket](const error_code& expired) {
    if (!expired) socket.close();
  });
  co_await asio::async_connect(socket, addresses, asio::redirect_error(asio::use_awaitable, failure));
  deadline.cancel();
  if (failure || !socket.is_open()) {
    error = "cannot connect to " + host + ":" + std::to_string(port) + ": " +
            (failure ? failure.message() : std::string("timed out"));
    co_return nullptr;
  }
  socket.set_option(tcp::no_delay(true), failure);
  auto connection = std::make_shared<net::TcpConnection>(std::move(socket), client_tls_, stopping_);
  connection->set_client(tls.server_name.empty() ? host : tls.server_name, tls.verify);
  if (tls.mode == sdk::TlsMode::implicit) {
    const bool secured = co_await connection->start_tls();
    if (!secured) {
      error = "TLS handshake with " + host + ":" + std::to_string(port) + " failed";
      connection->close();
      co_return nullptr;
    }
  }
  co_return connection;
}

}  // namespace tern::server
