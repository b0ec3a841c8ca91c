#include "smtp_hook_context.hpp"

#include "tern/sdk/address.hpp"
#include "tern/sdk/header.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace tern::smtp {
namespace {

[[noreturn]] void not_here(std::string_view what, sdk::Stage stage) {
  throw std::logic_error(std::string(what) + " is not available at stage " + std::string(sdk::stage_name(stage)));
}

}  // namespace

std::string_view SmtpHookContext::recipient() const {
  if (stage_ != sdk::Stage::rcpt) not_here("recipient()", stage_);
  return recipient_;
}

std::string_view SmtpHookContext::message() const {
  if (stage_ != sdk::Stage::message && stage_ != sdk::Stage::queued) not_here("message()", stage_);
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
  if (!address.empty() && !sdk::is_address(address)) {
    throw std::invalid_argument("set_sender(): \"" + std::string(address) + "\" is not a mail address");
  }
  sender_ = std::string(address);
}

void SmtpHookContext::add_recipient(std::string_view address) {
  if (stage_ != sdk::Stage::message) not_here("add_recipient()", stage_);
  if (!sdk::is_address(address)) {
    throw std::invalid_argument("add_recipient(): \"" + std::string(address) + "\" is not a mail address");
  }
  added_recipients_.emplace_back(address);
}

bool SmtpHookContext::remove_recipient(std::string_view address) {
  if (stage_ != sdk::Stage::message) not_here("remove_recipient()", stage_);
  const auto same = [&](std::string_view other) { return sdk::same_ascii(other, address); };
  const bool present = std::any_of(envelope_->recipients.begin(), envelope_->recipients.end(),
                                   [&](const sdk::Recipient& recipient) { return same(recipient.address); });
  const bool gone = std::any_of(removed_recipients_.begin(), removed_recipients_.end(), same);
  if (!present || gone) return false;
  removed_recipients_.emplace_back(address);
  return true;
}

}  // namespace tern::smtp
