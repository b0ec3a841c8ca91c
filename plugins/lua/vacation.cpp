#include "vacation.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>

#include "lua_state.hpp"
#include "tern/sdk/address.hpp"
#include "tern/sdk/base64.hpp"
#include "tern/sdk/header.hpp"

namespace tern::lua {
namespace {

std::string lower(std::string_view text) {
  return sdk::lower_ascii(text);
}

// Whether `address` stands in `value` as a whole address, not inside a longer one.
bool names_address(std::string_view value, std::string_view address) {
  const std::string haystack = lower(value);
  const std::string needle = lower(address);
  constexpr std::string_view kBounds = "<>,;: \t\"'()";
  for (std::size_t at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + 1)) {
    const bool starts = at == 0 || kBounds.find(haystack[at - 1]) != std::string_view::npos;
    const std::size_t end = at + needle.size();
    const bool ends = end == haystack.size() || kBounds.find(haystack[end]) != std::string_view::npos;
    if (starts && ends) return true;
  }
  return false;
}

// RFC 2047 encoded word for a header value that is not ASCII.
std::string header_text(std::string_view text) {
  if (sdk::is_ascii(text)) return std::string(text);
  return "=?UTF-8?B?" + sdk::base64_encode(text) + "?=";
}

// The body with CRLF line ends, whatever the script wrote.
std::string crlf_lines(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r') continue;
    if (text[i] == '\n') out += '\r';
    out += text[i];
  }
  if (out.size() < 2 || out.compare(out.size() - 2, 2, "\r\n") != 0) out += "\r\n";
  return out;
}

}  // namespace

std::optional<std::string> vacation_refusal(std::string_view message, const VacationRequest& request) {
  if (request.sender.empty()) return "the null sender gets no reply";
  const std::string local = lower(sdk::local_part_of(request.sender));
  if (local == "mailer-daemon" || local == "postmaster" || local == "listserv" || local == "majordomo" ||
      local.starts_with("owner-") || local.ends_with("-request") || local.ends_with("-owner") ||
      local.ends_with("-bounces") || local == "noreply" || local == "no-reply") {
    return "a system or list address gets no reply";
  }
  if (lower(request.sender) == lower(request.user)) return "the user's own mail gets no reply";
  const std::optional<std::string> auto_submitted = sdk::header_value(message, "Auto-Submitted");
  if (auto_submitted && lower(*auto_submitted).substr(0, 2) != "no") return "automatic mail gets no reply";
  const std::string precedence = lower(sdk::header_value(message, "Precedence").value_or(""));
  if (precedence == "list" || precedence == "bulk" || precedence == "junk") return "bulk mail gets no reply";
  for (const char* field : {"List-Id", "List-Unsubscribe", "List-Post", "List-Help"}) {
    if (sdk::header_value(message, field)) return "list mail gets no reply";
  }
  std::vector<std::string> addresses = request.addresses;
  addresses.push_back(request.user);
  for (const char* field : {"To", "Cc", "Bcc", "Resent-To", "Resent-Cc", "Resent-Bcc"}) {
    const std::optional<std::string> value = sdk::header_value(message, field);
    if (!value) continue;
    for (const std::string& address : addresses) {
      if (names_address(*value, address)) return std::nullopt;
    }
  }
  return "the message is not addressed to the user";
}

std::string vacation_reply(std::string_view message, const VacationRequest& request, std::string_view date,
                           std::string_view message_id) {
  std::string subject = request.subject;
  if (subject.empty()) {
    subject = "Auto: " + sdk::header_value(message, "Subject").value_or("");
  } else {
    subject = header_text(subject);
  }
  std::string reply = fmt::format(
      "From: <{}>\r\nTo: <{}>\r\nSubject: {}\r\nDate: {}\r\nMessage-ID: {}\r\nAuto-Submitted: auto-replied\r\n",
      request.user, request.sender, subject, date, message_id);
  // RFC 3834 section 3.1.5: the reply threads with what it answers.
  if (const std::optional<std::string> original = sdk::header_value(message, "Message-ID")) {
    const std::string references = sdk::header_value(message, "References").value_or("");
    reply += fmt::format("In-Reply-To: {}\r\nReferences: {}{}\r\n", *original, references,
                         references.empty() ? *original : " " + *original);
  }
  reply += "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n";
  reply += crlf_lines(request.text);
  return reply;
}

std::string vacation_key(std::string_view user, std::string_view sender) {
  return lower(user) + " " + lower(sender);
}

}  // namespace tern::lua
