// A client connection: buffered line reads with a deadline and a length cap, writes with a deadline, and TLS
// either from the first byte (implicit) or started in place (STARTTLS/STLS).
#pragma once

#include <utility>  // before Boost.Asio: Boost 1.74's awaitable.hpp needs it with g++ 12

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <memory>
#include <optional>

#include "tern/sdk/protocol.hpp"

namespace tern::net {

class TcpConnection final : public sdk::Connection, public std::enable_shared_from_this<TcpConnection> {
 public:
  // `tls` may be null (no certificate): STARTTLS is then unavailable. `stopping` is the server's flag.
  TcpConnection(boost::asio::ip::tcp::socket socket, std::shared_ptr<boost::asio::ssl::context> tls,
                const std::atomic<bool>& stopping);

  sdk::Task<sdk::ReadStatus> read_line(std::string& line, std::size_t max_length) override;
  sdk::Task<sdk::ReadStatus> read_command(std::string& line, std::size_t max_length) override;
  sdk::Task<sdk::ReadStatus> read_bytes(std::string& data, std::size_t count) override;
  bool input_pending() const override { return start_ < buffer_.size(); }
  sdk::Task<bool> write(std::string_view data) override;
  void set_read_timeout(std::chrono::seconds timeout) override { timeout_ = timeout; }
  bool can_start_tls() const override { return tls_context_ != nullptr && !tls_; }
  sdk::Task<bool> start_tls() override;
  bool tls_active() const override { return tls_.has_value(); }

  // Makes start_tls() the client side of the handshake, for an outbound connection to `server_name`: SNI,
  // and with `verify` the chain and the name checked (the context must then have trusted roots loaded).
  void set_client(std::string server_name, bool verify) {
    client_name_ = std::move(server_name);
    client_verify_ = verify;
  }

  // On the connection's loop only.
  void close();
  // Calls `handler` (error_code) once the socket has something to read, or with an error when cancelled. An
  // idle wait: interrupt_idle_wait() ends it.
  void wait_readable(std::function<void(const boost::system::error_code&)> handler);
  void cancel_wait_readable();
  bool stopping() const { return stopping_.load(); }
  // The server began shutting down: a wait for the next command ends now.
  void interrupt_idle_wait();
  boost::asio::any_io_executor executor() { return socket_.get_executor(); }

 private:
  sdk::Task<sdk::ReadStatus> read(std::string& line, std::size_t max_length, bool command);
  sdk::Task<std::size_t> read_some(char* data, std::size_t size, boost::system::error_code& error);
  // A read or write under way must end within timeout_. The timer is not re-armed for every operation (that
  // is a timerfd update each time): it runs to the deadline it was started with and, if the deadline has moved
  // on meanwhile, waits again for the rest.
  void arm_deadline();
  void disarm_deadline() { deadline_armed_ = false; }
  void wait_for_deadline();

  boost::asio::ip::tcp::socket socket_;
  std::shared_ptr<boost::asio::ssl::context> tls_context_;
  std::optional<boost::asio::ssl::stream<boost::asio::ip::tcp::socket&>> tls_;
  const std::atomic<bool>& stopping_;
  boost::asio::steady_timer deadline_;
  std::chrono::steady_clock::time_point deadline_at_;
  // While a line is read: when the whole of it must have come (read() sets it, for all of its reads).
  std::optional<std::chrono::steady_clock::time_point> line_deadline_;
  bool deadline_armed_ = false;    // an operation is under way and deadline_at_ applies to it
  bool deadline_waiting_ = false;  // the timer has a wait pending, until deadline_expiry_
  std::chrono::steady_clock::time_point deadline_expiry_;
  std::uint64_t deadline_wait_id_ = 0;  // tells the current wait from one cancelled before it
  bool timed_out_ = false;
  std::string client_name_;  // set for an outbound connection: the server's name
  bool client_verify_ = false;
  bool waiting_for_command_ = false;
  std::uint64_t readable_wait_id_ = 0;
  bool interrupted_ = false;
  std::chrono::seconds timeout_{300};
  std::string buffer_;
  std::size_t start_ = 0;  // first unread octet of buffer_
};

}  // namespace tern::net
