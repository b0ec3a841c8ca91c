#include "smtp_hook_context.hpp"

#include "tern/sdk/text.hpp"

#include <algorithm>
#include <cctype>
#include <stdexcept>
#include <string>

namespace tern::smtp {
namespace {

[[noreturn]] void not_here(std::string_view what, sdk::Stage stage) {
  throw std::logic_error(std::string(what) + " is not available at stage " + std::string(sdk::stage_name(stage)));
}

// RFC 3501 flag: a system flag (a backslash and an atom) or a keyword (an atom).
bool is_imap_flag(std::string_view flag) {
  if (!flag.empty() && flag.front() == '\\') flag.remove_prefix(1);
  if (flag.empty() || flag.size() > 100) return false;
  return std::all_of(flag.begin(), flag.end(), [](char c) {
    return c > ' ' && c < 0x7f && std::string_view("(){%*\"\\]").find(c) == std::string_view::npos;
  });
}

// Enough of an address to hand to the store and the queue: local@domain, no spaces, brackets or separators.
bool is_address(std::string_view address) {
  const std::size_t at = address.rfind('@');
  return at != 0 && at != std::string_view::npos && at + 1 != address.size() && address.size() <= 254 &&
         address.find_first_of(" \t\r\n<>,;") == std::string_view::npos;
}

// Case-insensitive, for flags and addresses alike.
bool same_text(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

std::string_view SmtpHookContext::recipient() const {
  if (stage_ != sdk::Stage::rcpt && stage_ != sdk::Stage::deliver) not_here("recipient()", stage_);
  return recipient_;
}

std::string_view SmtpHookContext::message() const {
  if (stage_ != sdk::Stage::message && stage_ != sdk::Stage::queued && stage_ != sdk::Stage::deliver) {
    not_here("message()", stage_);
  }
  return edited_ ? std::string_view(*edited_) : message_;
}

std::size_t SmtpHookContext::remove_header(std::string_view name) {
  if (stage_ != sdk::Stage::message) not_here("remove_header()", stage_);
  std::size_t removed = 0;
  std::string edited = sdk::without_header_fields(message(), name, removed);
  if (removed != 0) edited_ = std::move(edited);
  return removed;
}

void SmtpHookContext::add_header(std::string_view name, std::string_view value) {
  if (stage_ != sdk::Stage::message) not_here("add_header()", stage_);
  if (name.empty() || name.find_first_of(": \t\r\n") != std::string_view::npos) {
    throw std::invalid_argument("add_header(): bad header name \"" + std::string(name) + "\"");
  }
  if (value.find_first_of("\r\n") != std::string_view::npos) {
    throw std::invalid_argument("add_header(): the value of " + std::string(name) + " has a line break");
  }
  added_.append(name).append(": ").append(value).append("\r\n");
}

void SmtpHookContext::set_sender(std::string_view address) {
  if (stage_ != sdk::Stage::message) not_here("set_sender()", stage_);
  if (!address.empty() && !is_address(address)) {
    throw std::invalid_argument("set_sender(): \"" + std::string(address) + "\" is not a mail address");
  }
  sender_ = std::string(address);
}

void SmtpHookContext::add_recipient(std::string_view address) {
  if (stage_ != sdk::Stage::message) not_here("add_recipient()", stage_);
  if (!is_address(address)) {
    throw std::invalid_argument("add_recipient(): \"" + std::string(address) + "\" is not a mail address");
  }
  added_recipients_.emplace_back(address);
}

bool SmtpHookContext::remove_recipient(std::string_view address) {
  if (stage_ != sdk::Stage::message) not_here("remove_recipient()", stage_);
  const auto same = [&](std::string_view other) { return same_text(other, address); };
  const bool present = std::any_of(envelope_->recipients.begin(), envelope_->recipients.end(),
                                   [&](const sdk::Recipient& recipient) { return same(recipient.address); });
  const bool gone = std::any_of(removed_recipients_.begin(), removed_recipients_.end(), same);
  if (!present || gone) return false;
  removed_recipients_.emplace_back(address);
  return true;
}

void SmtpHookContext::add_flag(std::string_view flag) {
  if (stage_ != sdk::Stage::deliver) not_here("add_flag()", stage_);
  if (!is_imap_flag(flag)) throw std::invalid_argument("add_flag(): \"" + std::string(flag) + "\" is not an IMAP flag");
  if (same_text(flag, "\\Recent")) return;  // the server's to set, never stored
  std::size_t start = 0;
  while (start < flags_.size()) {
    std::size_t end = flags_.find(' ', start);
    if (end == std::string::npos) end = flags_.size();
    if (same_text(std::string_view(flags_).substr(start, end - start), flag)) return;
    start = end + 1;
  }
  if (!flags_.empty()) flags_ += ' ';
  flags_ += flag;
}

void SmtpHookContext::redirect(std::string_view address) {
  if (stage_ != sdk::Stage::deliver) not_here("redirect()", stage_);
  if (!is_address(address)) {
    throw std::invalid_argument("redirect(): \"" + std::string(address) + "\" is not a mail address");
  }
  redirects_.emplace_back(address);
}

}  // namespace tern::smtp
