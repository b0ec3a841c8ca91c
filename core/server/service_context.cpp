#include "server/service_context.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "net/tcp_connection.hpp"

namespace tern::server {

namespace asio = boost::asio;
using asio::ip::tcp;
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

sdk::Task<std::shared_ptr<sdk::Connection>> ServiceContext::connect(std::string host, std::uint16_t port,
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
  auto connection = std::make_shared<net::TcpConnection>(std::move(socket), client_tls_, server_stopping_);
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
