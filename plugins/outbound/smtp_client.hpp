// The SMTP client side (RFC 5321) over a core connection: EHLO with HELO fallback, STARTTLS (RFC 3207), AUTH
// PLAIN/LOGIN (RFC 4954), and mail transactions with PIPELINING (RFC 2920), SIZE (RFC 1870), 8BITMIME
// (RFC 6152), SMTPUTF8 (RFC 6531) and DSN (RFC 3461) parameters.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tern/sdk/protocol.hpp"
#include "tern/sdk/store.hpp"

namespace tern::outbound {

struct Reply {
  int code = 0;      // 0: no reply (the connection broke or the reply was malformed)
  std::string text;  // the lines joined by spaces, code and enhanced code included: "550 5.1.1 <a@b>: unknown"
  bool positive() const { return code >= 200 && code < 400; }
  bool transient() const { return code == 0 || (code >= 400 && code < 500); }
};

// What the peer said it supports in its EHLO reply.
struct Extensions {
  bool esmtp = false;  // EHLO worked (HELO was the fallback otherwise)
  bool pipelining = false;
  bool starttls = false;
  bool eight_bit_mime = false;
  bool smtputf8 = false;
  bool dsn = false;
  bool size = false;
  std::uint64_t size_limit = 0;  // 0: none announced
  bool auth_plain = false;
  bool auth_login = false;
};

// A mail transaction's input: the envelope and the message (CRLF line ends, not yet dot-stuffed).
struct Transaction {
  std::string sender;
  std::vector<sdk::QueueRecipient> recipients;
  std::string ret;
  std::string envid;
  bool eight_bit = false;  // the message has octets over 127
  bool smtputf8 = false;   // the envelope or headers need SMTPUTF8
  const std::string* message = nullptr;
};

class SmtpClient {
 public:
  explicit SmtpClient(std::shared_ptr<sdk::Connection> connection) : connection_(std::move(connection)) {}

  // Reads the greeting and says EHLO (HELO when EHLO is refused). A non-2xx greeting or hello is returned.
  sdk::Task<Reply> open(std::string helo_name);
  // STARTTLS, then EHLO again. A reply that is not 220, or a failed handshake (code 0), is returned.
  sdk::Task<Reply> start_tls(std::string helo_name);
  sdk::Task<Reply> authenticate(std::string user, std::string password);
  // One transaction: MAIL, RCPT for each recipient, DATA and the message. Returns the reply to each recipient
  // in order: the RCPT reply when that refused it, else the MAIL reply when that failed, else the reply to the
  // message. A connection that broke answers code 0 for whoever had no answer yet.
  sdk::Task<std::vector<Reply>> send(const Transaction& transaction);
  sdk::Task<void> quit();
  // Whether another transaction may follow on this connection.
  bool usable() const { return usable_; }
  const Extensions& extensions() const { return extensions_; }

 private:
  // MAIL FROM with the parameters the peer takes, then a RCPT TO for each recipient.
  std::vector<std::string> envelope_commands(const Transaction& transaction) const;
  sdk::Task<Reply> read_reply();
  sdk::Task<Reply> command(std::string line);
  sdk::Task<Reply> hello(const std::string& helo_name);

  std::shared_ptr<sdk::Connection> connection_;
  Extensions extensions_;
  bool usable_ = true;
};

// RFC 3461 xtext, for ENVID and ORCPT.
std::string xtext(std::string_view text);
// The message dot-stuffed and ended with CRLF.CRLF, bare LFs made CRLF.
std::string dot_stuffed(std::string_view message);

}  // namespace tern::outbound
