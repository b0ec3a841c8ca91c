#include "net/tcp_connection.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace tern::net {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {
constexpr std::size_t kReadChunk = 16 * 1024;
}

TcpConnection::TcpConnection(asio::ip::tcp::socket socket, std::shared_ptr<asio::ssl::context> tls,
                             const std::atomic<bool>& stopping)
    : socket_(std::move(socket)),
      tls_context_(std::move(tls)),
      stopping_(stopping),
      deadline_(socket_.get_executor()) {}

void TcpConnection::arm_deadline() {
  timed_out_ = false;
  deadline_at_ = std::chrono::steady_clock::now() + timeout_;
  if (line_deadline_ && *line_deadline_ < deadline_at_) deadline_at_ = *line_deadline_;
  deadline_armed_ = true;
  // A wait that ends later than the new deadline (the timeout was shortened) is replaced; one that ends
  // sooner is left to run and waits again for the rest.
  if (!deadline_waiting_ || deadline_expiry_ > deadline_at_) wait_for_deadline();
}

void TcpConnection::wait_for_deadline() {
  deadline_waiting_ = true;
  deadline_expiry_ = deadline_at_;
  deadline_.expires_at(deadline_at_);
  deadline_.async_wait([weak = weak_from_this(), id = ++deadline_wait_id_](const error_code& error) {
    auto self = weak.lock();
    if (!self || self->deadline_wait_id_ != id) return;
    self->deadline_waiting_ = false;
    if (error || !self->deadline_armed_) return;  // closed, or nothing under way: the next arm starts it again
    if (std::chrono::steady_clock::now() < self->deadline_at_) {
      self->wait_for_deadline();
      return;
    }
    self->timed_out_ = true;
    error_code ignored;
    self->socket_.cancel(ignored);
  });
}

sdk::Task<std::size_t> TcpConnection::read_some(char* data, std::size_t size, error_code& error) {
  // A client that writes a command in two pieces without TCP_NODELAY (an APPEND's line, then its literal)
  // holds the second until the first is acknowledged, and a delayed ACK would make that 40 ms. The kernel
  // leaves quick-ACK mode on its own, so it is asked for before every read.
  const int quick = 1;
  ::setsockopt(socket_.native_handle(), IPPROTO_TCP, TCP_QUICKACK, &quick, sizeof quick);
  arm_deadline();
  std::size_t count = 0;
  if (tls_) {
    count = co_await tls_->async_read_some(asio::buffer(data, size), asio::redirect_error(asio::use_awaitable, error));
  } else {
    count =
        co_await socket_.async_read_some(asio::buffer(data, size), asio::redirect_error(asio::use_awaitable, error));
  }
  disarm_deadline();
  co_return count;
}

sdk::Task<sdk::ReadStatus> TcpConnection::read_line(std::string& line, std::size_t max_length) {
  return read(line, max_length, false);
}

sdk::Task<sdk::ReadStatus> TcpConnection::read_command(std::string& line, std::size_t max_length) {
  return read(line, max_length, true);
}

sdk::Task<sdk::ReadStatus> TcpConnection::read(std::string& line, std::size_t max_length, bool command) {
  // The whole line within the timeout, not each of its reads: a client trickling a byte at a time
  // (slowloris) would otherwise hold its session for ever.
  line_deadline_ = std::chrono::steady_clock::now() + timeout_;
  struct LineDone {
    std::optional<std::chrono::steady_clock::time_point>& deadline;
    ~LineDone() { deadline.reset(); }
  } done{line_deadline_};
  line.clear();
  bool discarding = false;
  std::string head;       // an over-long line's first octets, kept for the caller
  char last_dropped = 0;  // the octet before the line's LF may have been dropped with the rest of it
  std::size_t scanned = start_;
  for (;;) {
    std::size_t end = buffer_.find('\n', scanned);
    if (end != std::string::npos) {
      std::size_t length = end + 1 - start_;
      bool too_long = discarding || length > max_length;
      if (too_long) {
        const char before = end > start_ ? buffer_[end - 1] : last_dropped;
        if (!discarding) head.assign(buffer_, start_, std::min(length, sdk::kLongLineHead));
        line = std::move(head) + (before == '\r' ? "\r\n" : "\n");
      } else {
        line.assign(buffer_, start_, length);
      }
      start_ = end + 1;
      // A session between commands holds no read buffer: with thousands idle, 16 KiB each would add up.
      if (start_ == buffer_.size()) {
        buffer_ = std::string();
        start_ = 0;
      }
      co_return too_long ? sdk::ReadStatus::too_long : sdk::ReadStatus::ok;
    }
    if (buffer_.size() - start_ >= max_length) {
      if (!discarding) head.assign(buffer_, start_, std::min(buffer_.size() - start_, sdk::kLongLineHead));
      discarding = true;
      last_dropped = buffer_.back();
      start_ = buffer_.size();
    }
    if (start_ == buffer_.size()) {
      buffer_.clear();
      start_ = 0;
    } else if (start_ > kReadChunk) {
      buffer_.erase(0, start_);
      start_ = 0;
    }
    scanned = buffer_.size();
    const bool idle = command && !discarding && buffer_.size() == start_;
    if (idle && stopping_.load()) co_return sdk::ReadStatus::stopping;
    if (idle && !tls_) {
      // Wait for the next command with no buffer at all; it is made once there is something to read. (Over
      // TLS the stream may hold decrypted data the socket no longer shows, so it reads at once.)
      buffer_ = std::string();
      error_code error;
      waiting_for_command_ = true;
      interrupted_ = false;
      arm_deadline();
      co_await socket_.async_wait(asio::ip::tcp::socket::wait_read, asio::redirect_error(asio::use_awaitable, error));
      disarm_deadline();
      waiting_for_command_ = false;
      if (error) {
        if (interrupted_) co_return sdk::ReadStatus::stopping;
        co_return timed_out_ ? sdk::ReadStatus::timeout : sdk::ReadStatus::closed;
      }
    }

    std::size_t old_size = buffer_.size();
    buffer_.resize(old_size + kReadChunk);
    error_code error;
    waiting_for_command_ = idle;
    interrupted_ = false;
    std::size_t count = co_await read_some(buffer_.data() + old_size, kReadChunk, error);
    waiting_for_command_ = false;
    buffer_.resize(old_size + count);
    if (error) {
      if (interrupted_) co_return sdk::ReadStatus::stopping;
      co_return timed_out_ ? sdk::ReadStatus::timeout : sdk::ReadStatus::closed;
    }
  }
}

sdk::Task<sdk::ReadStatus> TcpConnection::read_bytes(std::string& data, std::size_t count) {
  for (;;) {
    const std::size_t take = std::min(count, buffer_.size() - start_);
    data.append(buffer_, start_, take);
    start_ += take;
    count -= take;
    if (start_ == buffer_.size()) {
      buffer_.clear();
      start_ = 0;
    }
    if (count == 0) {
      // The client may hold back the rest of its command (the CRLF after an IMAP literal) until this data is
      // acknowledged, while the kernel delays the ACK because the server has nothing to send: ACK at once.
      int on = 1;
      ::setsockopt(socket_.native_handle(), IPPROTO_TCP, TCP_QUICKACK, &on, sizeof on);
      co_return sdk::ReadStatus::ok;
    }
    buffer_.resize(kReadChunk);
    error_code error;
    const std::size_t received = co_await read_some(buffer_.data(), kReadChunk, error);
    buffer_.resize(received);
    if (error) co_return timed_out_ ? sdk::ReadStatus::timeout : sdk::ReadStatus::closed;
  }
}

sdk::Task<bool> TcpConnection::write(std::string_view data) {
  error_code error;
  arm_deadline();
  if (tls_) {
    co_await asio::async_write(*tls_, asio::buffer(data), asio::redirect_error(asio::use_awaitable, error));
  } else {
    co_await asio::async_write(socket_, asio::buffer(data), asio::redirect_error(asio::use_awaitable, error));
  }
  disarm_deadline();
  co_return !error;
}

sdk::Task<bool> TcpConnection::start_tls() {
  if (!can_start_tls()) co_return false;
  // What the client sent after the command and before the handshake is dropped: no plaintext injection.
  buffer_.clear();
  start_ = 0;
  tls_.emplace(socket_, *tls_context_);
  const bool client = !client_name_.empty();
  if (client) {
    // RFC 6066: SNI carries host names only, never an address literal.
    error_code not_address;
    asio::ip::make_address(client_name_, not_address);
    if (not_address) SSL_set_tlsext_host_name(tls_->native_handle(), client_name_.c_str());
    if (client_verify_) {
      tls_->set_verify_mode(asio::ssl::verify_peer);
      tls_->set_verify_callback(asio::ssl::host_name_verification(client_name_));
    } else {
      tls_->set_verify_mode(asio::ssl::verify_none);
    }
  }
  error_code error;
  arm_deadline();
  co_await tls_->async_handshake(client ? asio::ssl::stream_base::client : asio::ssl::stream_base::server,
                                 asio::redirect_error(asio::use_awaitable, error));
  disarm_deadline();
  co_return !error;
}

void TcpConnection::close() {
  disarm_deadline();
  deadline_.cancel();
  error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
}

void TcpConnection::wait_readable(std::function<void(const error_code&)> handler) {
  waiting_for_command_ = true;
  interrupted_ = false;
  // A cancelled wait completes later; by then a new wait may be under way, whose flag it must not clear.
  socket_.async_wait(asio::ip::tcp::socket::wait_read, [weak = weak_from_this(), id = ++readable_wait_id_,
                                                        handler = std::move(handler)](const error_code& error) {
    auto self = weak.lock();
    if (self && self->readable_wait_id_ == id) self->waiting_for_command_ = false;
    handler(error);
  });
}

void TcpConnection::cancel_wait_readable() {
  if (!waiting_for_command_) return;
  error_code ignored;
  socket_.cancel(ignored);
}

void TcpConnection::interrupt_idle_wait() {
  if (!waiting_for_command_) return;
  interrupted_ = true;
  error_code ignored;
  socket_.cancel(ignored);
}

}  // namespace tern::net
