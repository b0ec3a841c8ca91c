// What a protocol plugin (SMTP, POP3, IMAP) implements and what the core gives it: a connection with
// deadlines and TLS, the store, the hook pipeline and a pool for blocking work. This header brings in
// Boost.Asio's coroutine types; only protocol plugins include it.
#pragma once

#include <utility>  // before Boost.Asio: Boost 1.74's awaitable.hpp needs it with g++ 12

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "tern/sdk/hook.hpp"
#include "tern/sdk/log.hpp"
#include "tern/sdk/store.hpp"

namespace tern::sdk {

template <typename T>
using Task = boost::asio::awaitable<T>;

enum class TlsMode { none, starttls, implicit };

// A listener as configured: one [[listener]] table.
struct ListenerInfo {
  std::string protocol;  // "smtp", "submission", "pop3", "imap"
  std::string address;   // "127.0.0.1:2525"
  TlsMode tls = TlsMode::none;
  // Password logins (SMTP AUTH, POP3 USER/PASS) without TLS. Off by default, loopback included.
  bool allow_plaintext_auth = false;
};

// How much of an over-long line read_line() keeps (see ReadStatus::too_long).
inline constexpr std::size_t kLongLineHead = 256;

enum class ReadStatus {
  ok,  // a whole line, terminator included
  // The line exceeded the cap and was discarded up to its end; `line` holds its first octets (at most
  // kLongLineHead), so a protocol can still name the command it answers (an IMAP tag), then its terminator.
  too_long,
  timeout,   // the read deadline passed
  closed,    // the peer closed, or the connection failed
  stopping,  // read_command only: the server is shutting down and the client has no command under way
};

// One client connection, owned by the core and valid for the whole serve() call. Used from the session's
// event loop only, one operation at a time.
class Connection {
 public:
  // Reads one line ending in LF (a preceding CR stays part of it) into `line`, at most `max_length` octets
  // counting the terminator. Each read has the deadline given to set_read_timeout (default five minutes).
  virtual Task<ReadStatus> read_line(std::string& line, std::size_t max_length) = 0;
  // read_line at a command boundary: when the server shuts down while the client has not started a new
  // line, it returns `stopping` (at once, or by interrupting the wait) so the session can say goodbye.
  virtual Task<ReadStatus> read_command(std::string& line, std::size_t max_length) = 0;
  // Appends exactly `count` octets to `data` (SMTP BDAT), with the read deadline. `ok` or `timeout`/`closed`.
  virtual Task<ReadStatus> read_bytes(std::string& data, std::size_t count) = 0;
  // Whether input the client already sent waits in the buffer: a pipelining client (RFC 2920) is answered
  // in one write once the buffer runs dry.
  virtual bool input_pending() const = 0;
  // Writes everything or fails; false when the connection is gone.
  virtual Task<bool> write(std::string_view data) = 0;
  virtual void set_read_timeout(std::chrono::seconds timeout) = 0;
  // Whether this listener can start TLS in place (a certificate is configured and TLS is not on yet).
  virtual bool can_start_tls() const = 0;
  // Upgrades the connection to TLS. Anything the client sent before the handshake is discarded, so no
  // plaintext command can be injected into the TLS session. False when the handshake failed; the connection
  // must then be dropped.
  virtual Task<bool> start_tls() = 0;
  virtual bool tls_active() const = 0;

 protected:
  ~Connection() = default;
};

// Why wait_for_news() returned.
enum class WakeReason {
  input,            // the client sent something
  mailbox_changed,  // mailbox_changed() named the user
  timeout,          // the limit passed
  stopping,         // the server is shutting down
};

struct LoginResult {
  enum class Status { ok, failed, blocked };
  Status status = Status::failed;
  std::string user;  // the canonical address, when ok
  bool ok() const { return status == Status::ok; }
};

enum class DnsType { a, aaaa, mx, txt, ptr };

// A DNS answer, as ServerContext::resolve gives it.
struct DnsAnswer {
  enum class Status {
    ok,         // `records` holds the answer
    no_data,    // the name exists, without records of the type
    no_domain,  // NXDOMAIN: the name does not exist
    failed,     // no answer (timeout, SERVFAIL, ...): `error` says why; try again later
  };
  struct Record {
    int preference = 0;  // MX only
    std::string value;   // A/AAAA: the address as text; MX (the exchange, "" for RFC 7505's null MX) and PTR:
                         // the name, lower-case, without the final dot; TXT: the strings of the record joined
  };
  Status status = Status::failed;
  std::vector<Record> records;
  std::string error;
};

// An outbound connection's TLS: none, at once (POP3S, IMAPS), or later with Connection::start_tls() (STLS,
// STARTTLS). `verify` checks the server's certificate chain against the system's trusted roots and its name
// against the host asked for; turn it off only for a server whose certificate is known to be self-signed.
struct ClientTls {
  TlsMode mode = TlsMode::none;
  bool verify = true;
  // The name to send (SNI) and to check the certificate against when it is not the host connected to: an MX
  // host's name when connect() is given its address. Empty: the host connected to.
  std::string server_name;
};

// The server as one session sees it. Valid for the whole serve() call; used from the session's loop.
class ServerContext {
 public:
  virtual std::string_view hostname() const = 0;
  virtual MailStore& store() = 0;
  virtual Log& log() = 0;
  // Runs the hook chain of a stage (docs/architecture.md, "Hooks and verdicts") and returns the deciding verdict, with
  // code, enhanced code and text filled in and checked. `next` when no hook decided.
  virtual Task<Verdict> run_hooks(Stage stage, HookContext& context) = 0;
  // Runs blocking work (store calls, hashing) on the server's worker pool; the coroutine resumes on the
  // session's loop afterwards. An exception from `work` is rethrown here.
  virtual Task<void> offload(std::function<void()> work) = 0;
  // Checks a user's password, slowly, off the loop. A failure is logged and answered only after a pause that
  // grows with the client address's recent failures; past the limit ([limits] max_auth_failures) the address
  // is `blocked` without a check until its failures age out, and the session should end (SMTP 421).
  virtual Task<LoginResult> authenticate(const ClientInfo& client, std::string_view user,
                                         std::string_view password) = 0;

  // Connects to host:port (a name is resolved by the system) within 30 seconds, then does TLS at once when
  // `tls.mode` is implicit. The connection's reads and writes have the usual deadlines; it closes when the
  // last reference goes. Null, with `error` saying why, on failure.
  virtual Task<std::shared_ptr<Connection>> connect(std::string host, std::uint16_t port, ClientTls tls,
                                                    std::string& error) = 0;
  // Asks the DNS ([dns] servers, else the system's resolver configuration) without blocking the loop; answers
  // are cached for their TTL. For PTR, `name` is an IP address.
  virtual Task<DnsAnswer> resolve(std::string name, DnsType type) = 0;

  // Tells the sessions waiting in wait_for_news() for these users that their mail changed: a delivery, flags,
  // an expunge. Any session that changes a mailbox calls it. Thread-safe, and it returns at once.
  virtual void mailbox_changed(const std::vector<std::string>& users) = 0;
  // Waits, without reading, until the client sends something, mailbox_changed() names `user`, `limit` passes
  // or the server begins to shut down (IMAP IDLE).
  virtual Task<WakeReason> wait_for_news(Connection& connection, std::string_view user, std::chrono::seconds limit) = 0;

  // Adds `delta` (positive) to the counter `name`: lower-case letters, digits and '_', at most 64 characters
  // (other names are ignored, as are new names past the server's limit of 1,000 counters). The metrics
  // listener shows it as tern_<name>_total for the process's life. Thread-safe; returns at once.
  virtual void count(std::string_view name, std::int64_t delta) = 0;
  // Every counter and its value, by name.
  virtual std::vector<std::pair<std::string, std::int64_t>> counters() const = 0;

  // offload() that hands back a failure as its message instead of throwing it, for callers that answer it
  // with a protocol error (a coroutine cannot co_await inside a catch block). nullopt when the work succeeded.
  template <typename Work>
  Task<std::optional<std::string>> attempt(Work work) {
    std::optional<std::string> failure;
    co_await offload([&] {
      try {
        work();
      } catch (const std::exception& error) {
        failure = error.what();
      }
    });
    co_return failure;
  }

  // offload() returning the work's result.
  template <typename Work>
  Task<std::invoke_result_t<Work&>> blocking(Work work) {
    using Result = std::invoke_result_t<Work&>;
    if constexpr (std::is_void_v<Result>) {
      co_await offload(std::move(work));
    } else {
      std::optional<Result> result;
      co_await offload([&] { result.emplace(work()); });
      co_return std::move(*result);
    }
  }

 protected:
  ~ServerContext() = default;
};

// A protocol a plugin serves. One object serves every listener of its protocol and every session of them at
// once, from several loops: it must keep no per-session state of its own (that lives in serve's frame).
class Protocol {
 public:
  virtual ~Protocol() = default;
  virtual std::string name() const = 0;
  // The line sent, before closing, to a client refused because the server is at its connection limit.
  virtual std::string busy_reply() const = 0;
  // Serves one connection from greeting to goodbye. Must not throw: the core closes the connection when
  // this returns.
  virtual Task<void> serve(Connection& connection, ServerContext& server, const ListenerInfo& listener,
                           ClientInfo client) const = 0;
};

}  // namespace tern::sdk
