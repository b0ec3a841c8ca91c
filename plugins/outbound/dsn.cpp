#include "dsn.hpp"

#include <fmt/format.h>

#include <cctype>
#include <ctime>
#include <random>

#include "tern/sdk/text.hpp"

namespace tern::outbound {
namespace {

// Beyond this, a bounce returns the original's header only: the sender has the message, and a bounce that
// is itself refused for its size helps nobody.
constexpr std::size_t kReturnedMessageLimit = 1024 * 1024;

bool is_enhanced_code(std::string_view text) {
  // class "." subject "." detail: 2, 4 or 5, then one to three digits, then one to three digits.
  if (text.size() < 5 || (text[0] != '2' && text[0] != '4' && text[0] != '5') || text[1] != '.') return false;
  std::size_t dots = 0;
  for (char c : text.substr(2)) {
    if (c == '.') {
      ++dots;
    } else if (!std::isdigit(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return dots == 1 && text.back() != '.';
}

bool is_smtp_reply(std::string_view diagnostic) {
  return diagnostic.size() >= 3 && std::isdigit(static_cast<unsigned char>(diagnostic[0])) &&
         std::isdigit(static_cast<unsigned char>(diagnostic[1])) &&
         std::isdigit(static_cast<unsigned char>(diagnostic[2])) && (diagnostic.size() == 3 || diagnostic[3] == ' ');
}

std::string header_of(std::string_view message) {
  const std::size_t end = message.find("\r\n\r\n");
  return std::string(end == std::string_view::npos ? message : message.substr(0, end + 2));
}

std::string explanation(const DsnReport& report) {
  bool failed = false;
  bool delayed = false;
  for (const DsnRecipient& recipient : report.recipients) {
    failed = failed || recipient.action == "failed";
    delayed = delayed || recipient.action == "delayed";
  }
  std::string text = fmt::format("This is the mail system at host {}.\r\n\r\n", report.reporting_host);
  if (failed) {
    text += "Your message could not be delivered to one or more recipients. It is attached below.\r\n";
  } else if (delayed) {
    text +=
        "Your message has not been delivered yet to one or more recipients. Delivery will be tried again; you need "
        "not send it again.\r\n";
  } else {
    text += "Your message was passed on to one or more recipients' servers, which do not report delivery.\r\n";
  }
  text += "\r\n";
  for (const DsnRecipient& recipient : report.recipients) {
    text += fmt::format("<{}>: {}{}\r\n", recipient.address, recipient.diagnostic,
                        recipient.remote_host.empty() ? "" : " (from " + recipient.remote_host + ")");
  }
  return text;
}

}  // namespace

bool notify_wants(std::string_view notify, std::string_view kind) {
  const std::string upper = [&] {
    std::string result(notify);
    for (char& c : result) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return result;
  }();
  if (upper.empty()) return kind == "FAILURE" || kind == "DELAY";
  return upper.find(kind) != std::string::npos;
}

std::string status_of(std::string_view diagnostic, std::string_view action) {
  std::string_view rest = diagnostic;
  if (is_smtp_reply(diagnostic)) rest = diagnostic.size() > 4 ? diagnostic.substr(4) : std::string_view();
  const std::string_view first = rest.substr(0, rest.find(' '));
  if (is_enhanced_code(first)) {
    // A failed recipient whose last answer was temporary (it expired) keeps that answer's detail.
    return std::string(first);
  }
  if (is_smtp_reply(diagnostic)) return diagnostic[0] == '5' ? "5.0.0" : diagnostic[0] == '2' ? "2.0.0" : "4.0.0";
  return action == "failed" ? "5.0.0" : action == "delayed" ? "4.0.0" : "2.0.0";
}

std::string compose_dsn(const DsnReport& report, std::string_view original, std::int64_t now) {
  thread_local std::mt19937_64 random(std::random_device{}());
  const std::string boundary = fmt::format("{:016x}/{}", random(), report.reporting_host);
  bool failed = false;
  for (const DsnRecipient& recipient : report.recipients) failed = failed || recipient.action == "failed";
  const bool delayed_only = !failed && std::all_of(report.recipients.begin(), report.recipients.end(),
                                                   [](const DsnRecipient& r) { return r.action == "delayed"; });
  const std::string subject = failed         ? "Undelivered Mail Returned to Sender"
                              : delayed_only ? "Delayed Mail (still being retried)"
                                             : "Successful Mail Delivery Report";
  std::string message;
  message += fmt::format("From: Mail Delivery System <MAILER-DAEMON@{}>\r\n", report.reporting_host);
  message += fmt::format("To: <{}>\r\n", report.sender);
  message += fmt::format("Subject: {}\r\n", subject);
  message += fmt::format("Date: {}\r\n", sdk::rfc5322_date(now));
  message += fmt::format("Message-ID: <{:016x}.dsn@{}>\r\n", random(), report.reporting_host);
  message += "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n";
  const bool whole = sdk::lower_ascii(report.ret) != "hdrs" && original.size() <= kReturnedMessageLimit;
  const std::string returned = whole ? std::string(original) : header_of(original);
  const bool eight_bit = !sdk::is_ascii(returned);
  // A multipart with an 8-bit part is 8-bit itself (RFC 2045 section 6.4).
  if (eight_bit) message += "Content-Transfer-Encoding: 8bit\r\n";
  message += fmt::format(
      "Content-Type: multipart/report; report-type=delivery-status;\r\n boundary=\"{}\"\r\n\r\n"
      "This is a MIME-encapsulated message.\r\n\r\n",
      boundary);
  message += fmt::format("--{}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n", boundary);
  message += explanation(report);
  message += fmt::format("\r\n--{}\r\nContent-Type: message/delivery-status\r\n\r\n", boundary);
  message += fmt::format("Reporting-MTA: dns; {}\r\n", report.reporting_host);
  if (!report.envid.empty()) message += fmt::format("Original-Envelope-Id: {}\r\n", report.envid);
  message += fmt::format("Arrival-Date: {}\r\n", sdk::rfc5322_date(report.arrival));
  for (const DsnRecipient& recipient : report.recipients) {
    message += "\r\n";
    if (!recipient.orcpt.empty()) message += fmt::format("Original-Recipient: {}\r\n", recipient.orcpt);
    message += fmt::format("Final-Recipient: rfc822; {}\r\n", recipient.address);
    message += fmt::format("Action: {}\r\n", recipient.action);
    message += fmt::format("Status: {}\r\n", status_of(recipient.diagnostic, recipient.action));
    if (!recipient.remote_host.empty()) {
      // "mx.example.org[192.0.2.1]" names a host; "[192.0.2.1]" alone, an address.
      const std::size_t bracket = recipient.remote_host.find('[');
      message += fmt::format("Remote-MTA: dns; {}\r\n", bracket == 0 || bracket == std::string::npos
                                                            ? recipient.remote_host
                                                            : recipient.remote_host.substr(0, bracket));
    }
    if (is_smtp_reply(recipient.diagnostic)) {
      message += fmt::format("Diagnostic-Code: smtp; {}\r\n", recipient.diagnostic);
    } else if (!recipient.diagnostic.empty()) {
      message += fmt::format("Diagnostic-Code: X-Tern; {}\r\n", recipient.diagnostic);
    }
  }
  message +=
      fmt::format("\r\n--{}\r\nContent-Type: {}\r\n{}\r\n", boundary, whole ? "message/rfc822" : "text/rfc822-headers",
                  eight_bit ? "Content-Transfer-Encoding: 8bit\r\n" : "");
  message += returned;
  if (message.size() < 2 || message.compare(message.size() - 2, 2, "\r\n") != 0) message += "\r\n";
  message += fmt::format("\r\n--{}--\r\n", boundary);
  return message;
}

}  // namespace tern::outbound
