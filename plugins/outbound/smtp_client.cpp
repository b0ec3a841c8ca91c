#include "smtp_client.hpp"

#include <fmt/format.h>

#include "tern/sdk/base64.hpp"
#include "tern/sdk/text.hpp"

namespace tern::outbound {
namespace {

constexpr std::size_t kLineLimit = 4096;
constexpr std::size_t kReplyLines = 100;

std::string upper_ascii(std::string_view text) {
  std::string result(text);
  for (char& c : result) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return result;
}

}  // namespace

std::string xtext(std::string_view text) {
  std::string result;
  for (unsigned char c : text) {
    if (c < 33 || c > 126 || c == '+' || c == '=') {
      result += fmt::format("+{:02X}", c);
    } else {
      result += static_cast<char>(c);
    }
  }
  return result;
}

std::string dot_stuffed(std::string_view message) {
  std::string out;
  out.reserve(message.size() + message.size() / 64 + 8);
  bool line_start = true;
  for (std::size_t i = 0; i < message.size(); ++i) {
    const char c = message[i];
    if (line_start && c == '.') out += '.';
    if (c == '\n' && (i == 0 || message[i - 1] != '\r')) out += '\r';
    out += c;
    line_start = c == '\n';
  }
  if (!line_start) out += "\r\n";
  out += ".\r\n";
  return out;
}

sdk::Task<Reply> SmtpClient::read_reply() {
  Reply reply;
  std::string line;
  for (std::size_t count = 0; count < kReplyLines; ++count) {
    const sdk::ReadStatus status = co_await connection_->read_line(line, kLineLimit);
    const std::string_view text = sdk::strip_line_end(line);
    if (status != sdk::ReadStatus::ok || text.size() < 3 || !std::isdigit(static_cast<unsigned char>(text[0])) ||
        !std::isdigit(static_cast<unsigned char>(text[1])) || !std::isdigit(static_cast<unsigned char>(text[2])) ||
        (text.size() > 3 && text[3] != ' ' && text[3] != '-')) {
      usable_ = false;
      co_return Reply{0, status == sdk::ReadStatus::ok ? "malformed reply: " + std::string(text.substr(0, 200))
                                                       : "lost connection"};
    }
    const int code = std::stoi(std::string(text.substr(0, 3)));
    if (reply.code != 0 && code != reply.code) {
      usable_ = false;
      co_return Reply{0, "malformed multi-line reply"};
    }
    if (reply.code == 0) {
      reply.code = code;
      reply.text = std::string(text);
    } else {
      reply.text += " " + std::string(text.size() > 4 ? text.substr(4) : std::string_view());
    }
    if (text.size() == 3 || text[3] == ' ') {
      if (code == 421) usable_ = false;
      co_return reply;
    }
  }
  usable_ = false;
  co_return Reply{0, "reply too long"};
}

sdk::Task<Reply> SmtpClient::command(std::string line) {
  const bool written = co_await connection_->write(line + "\r\n");
  if (!written) {
    usable_ = false;
    co_return Reply{0, "lost connection"};
  }
  const Reply reply = co_await read_reply();
  co_return reply;
}

sdk::Task<Reply> SmtpClient::hello(const std::string& helo_name) {
  extensions_ = {};
  const bool written = co_await connection_->write("EHLO " + helo_name + "\r\n");
  if (!written) {
    usable_ = false;
    co_return Reply{0, "lost connection"};
  }
  // The capabilities are the lines of the reply; read them one by one rather than through read_reply().
  std::string line;
  Reply reply;
  for (std::size_t count = 0; count < kReplyLines; ++count) {
    const sdk::ReadStatus status = co_await connection_->read_line(line, kLineLimit);
    const std::string text(sdk::strip_line_end(line));
    if (status != sdk::ReadStatus::ok || text.size() < 3) {
      usable_ = false;
      co_return Reply{0, "lost connection"};
    }
    if (reply.code == 0) {
      reply.code = std::atoi(text.substr(0, 3).c_str());
      reply.text = text;
    } else if (text.size() > 4) {
      const std::string keyword = upper_ascii(text.substr(4));
      extensions_.pipelining |= keyword == "PIPELINING";
      extensions_.starttls |= keyword == "STARTTLS";
      extensions_.eight_bit_mime |= keyword == "8BITMIME";
      extensions_.smtputf8 |= keyword == "SMTPUTF8";
      extensions_.dsn |= keyword == "DSN";
      if (keyword == "SIZE" || keyword.rfind("SIZE ", 0) == 0) {
        extensions_.size = true;
        if (keyword.size() > 5) extensions_.size_limit = std::strtoull(keyword.c_str() + 5, nullptr, 10);
      }
      if (keyword.rfind("AUTH ", 0) == 0 || keyword.rfind("AUTH=", 0) == 0) {
        extensions_.auth_plain |= keyword.find("PLAIN") != std::string::npos;
        extensions_.auth_login |= keyword.find("LOGIN") != std::string::npos;
      }
    }
    if (text.size() == 3 || text[3] == ' ') break;
  }
  if (reply.code == 250) {
    extensions_.esmtp = true;
    co_return reply;
  }
  if (reply.code >= 500 && reply.code < 600) {
    // RFC 5321 section 3.2: a server without ESMTP refuses EHLO; say HELO and use no extension.
    const Reply helo = co_await command("HELO " + helo_name);
    co_return helo;
  }
  co_return reply;
}

sdk::Task<Reply> SmtpClient::open(std::string helo_name) {
  const Reply greeting = co_await read_reply();
  if (greeting.code != 220) co_return greeting;
  const Reply reply = co_await hello(helo_name);
  co_return reply;
}

sdk::Task<Reply> SmtpClient::start_tls(std::string helo_name) {
  const Reply reply = co_await command("STARTTLS");
  if (reply.code != 220) co_return reply;
  const bool secured = co_await connection_->start_tls();
  if (!secured) {
    usable_ = false;
    co_return Reply{0, "TLS handshake failed"};
  }
  const Reply again = co_await hello(helo_name);
  co_return again;
}

sdk::Task<Reply> SmtpClient::authenticate(std::string user, std::string password) {
  if (extensions_.auth_plain) {
    std::string credentials;
    credentials += '\0';
    credentials += user;
    credentials += '\0';
    credentials += password;
    const Reply reply = co_await command("AUTH PLAIN " + sdk::base64_encode(credentials));
    co_return reply;
  }
  if (!extensions_.auth_login) co_return Reply{0, "the relay offers neither AUTH PLAIN nor AUTH LOGIN"};
  const Reply first = co_await command("AUTH LOGIN");
  if (first.code != 334) co_return first;
  const Reply second = co_await command(sdk::base64_encode(user));
  if (second.code != 334) co_return second;
  const Reply last = co_await command(sdk::base64_encode(password));
  co_return last;
}

std::vector<std::string> SmtpClient::envelope_commands(const Transaction& transaction) const {
  const Extensions& peer = extensions_;
  std::string mail = "MAIL FROM:<" + transaction.sender + ">";
  if (peer.size) mail += fmt::format(" SIZE={}", transaction.message->size());
  if (transaction.eight_bit && peer.eight_bit_mime) mail += " BODY=8BITMIME";
  if (transaction.smtputf8 && peer.smtputf8) mail += " SMTPUTF8";
  if (peer.dsn) {
    if (!transaction.ret.empty()) mail += " RET=" + transaction.ret;
    if (!transaction.envid.empty()) mail += " ENVID=" + xtext(transaction.envid);
  }
  std::vector<std::string> commands{std::move(mail)};
  for (const sdk::QueueRecipient& recipient : transaction.recipients) {
    std::string rcpt = "RCPT TO:<" + recipient.address + ">";
    if (peer.dsn) {
      if (!recipient.notify.empty()) rcpt += " NOTIFY=" + recipient.notify;
      const std::size_t semicolon = recipient.orcpt.find(';');
      if (semicolon != std::string::npos) {
        rcpt += " ORCPT=" + recipient.orcpt.substr(0, semicolon + 1) + xtext(recipient.orcpt.substr(semicolon + 1));
      }
    }
    commands.push_back(std::move(rcpt));
  }
  return commands;
}

sdk::Task<std::vector<Reply>> SmtpClient::send(const Transaction& transaction) {
  const Extensions& peer = extensions_;
  std::vector<std::string> rcpts = envelope_commands(transaction);
  const std::string mail = std::move(rcpts.front());
  rcpts.erase(rcpts.begin());
  const std::size_t count = transaction.recipients.size();
  std::vector<Reply> replies(count);
  Reply mail_reply;
  std::vector<Reply> rcpt_replies;
  Reply data_reply;
  if (peer.pipelining) {
    // RFC 2920: MAIL, every RCPT and DATA in one write; the replies come back in order.
    std::string batch = mail + "\r\n";
    for (const std::string& rcpt : rcpts) batch += rcpt + "\r\n";
    batch += "DATA\r\n";
    const bool written = co_await connection_->write(batch);
    if (!written) {
      usable_ = false;
      for (Reply& reply : replies) reply = Reply{0, "lost connection"};
      co_return replies;
    }
    mail_reply = co_await read_reply();
    for (std::size_t i = 0; i < count; ++i) {
      const Reply reply = co_await read_reply();
      rcpt_replies.push_back(reply);
    }
    data_reply = co_await read_reply();
  } else {
    mail_reply = co_await command(mail);
    if (mail_reply.positive()) {
      for (const std::string& rcpt : rcpts) {
        if (!usable_) break;  // a 421 or a broken connection: the rest have no answer
        const Reply reply = co_await command(rcpt);
        rcpt_replies.push_back(reply);
      }
    }
  }
  const bool any_accepted =
      std::any_of(rcpt_replies.begin(), rcpt_replies.end(), [](const Reply& r) { return r.positive(); });
  if (!peer.pipelining && mail_reply.positive() && any_accepted) data_reply = co_await command("DATA");
  Reply final_reply = data_reply;
  if (data_reply.code == 354) {
    if (mail_reply.positive() && any_accepted) {
      const bool written = co_await connection_->write(dot_stuffed(*transaction.message));
      if (written) {
        const Reply reply = co_await read_reply();
        final_reply = reply;
      } else {
        usable_ = false;
        final_reply = Reply{0, "lost connection"};
      }
    } else {
      // RFC 2920 section 3.1: DATA accepted without a recipient; end the empty message, whatever is answered.
      const Reply ignored = co_await command(".");
      final_reply = Reply{ignored.code, ignored.text};
    }
  }
  for (std::size_t i = 0; i < count; ++i) {
    if (!mail_reply.positive()) {
      replies[i] = mail_reply;
    } else if (i < rcpt_replies.size() && !rcpt_replies[i].positive()) {
      replies[i] = rcpt_replies[i];
    } else if (data_reply.code != 354) {
      replies[i] = data_reply.code == 0 || data_reply.positive() ? Reply{0, data_reply.text} : data_reply;
    } else {
      replies[i] = final_reply;
    }
  }
  // A transaction that did not end in a reply to the message leaves the server mid-way: RSET before reuse.
  if (usable_ && final_reply.code != 250) {
    const Reply reset = co_await command("RSET");
    if (reset.code != 250) usable_ = false;
  }
  co_return replies;
}

sdk::Task<void> SmtpClient::quit() {
  if (usable_) {
    const Reply ignored = co_await command("QUIT");
    static_cast<void>(ignored);
  }
  usable_ = false;
}

}  // namespace tern::outbound
