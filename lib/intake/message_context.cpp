#include "message_context.hpp"

#include <algorithm>
#include <stdexcept>

#include "tern/sdk/address.hpp"
#include "tern/sdk/header.hpp"

namespace tern::intake {

std::size_t MessageContext::remove_header(std::string_view name) {
  only_at_message("remove_header()");
  std::size_t removed = 0;
  std::string edited = sdk::without_header_fields(message(), name, removed);
  if (removed != 0) edited_ = std::move(edited);
  return removed;
}

void MessageContext::add_header(std::string_view name, std::string_view value) {
  only_at_message("add_header()");
  if (name.empty() || name.find_first_of(": \t\r\n") != std::string_view::npos) {
    throw std::invalid_argument("add_header(): bad header name \"" + std::string(name) + "\"");
  }
  if (value.find_first_of("\r\n") != std::string_view::npos) {
    throw std::invalid_argument("add_header(): the value of " + std::string(name) + " has a line break");
  }
  added_.append(name).append(": ").append(value).append("\r\n");
}

void MessageContext::set_sender(std::string_view address) {
  only_at_message("set_sender()");
  if (!address.empty() && !sdk::is_address(address)) {
    throw std::invalid_argument("set_sender(): \"" + std::string(address) + "\" is not a mail address");
  }
  sender_ = std::string(address);
}

void MessageContext::add_recipient(std::string_view address) {
  only_at_message("add_recipient()");
  if (!sdk::is_address(address)) {
    throw std::invalid_argument("add_recipient(): \"" + std::string(address) + "\" is not a mail address");
  }
  added_recipients_.emplace_back(address);
}

bool MessageContext::remove_recipient(std::string_view address) {
  only_at_message("remove_recipient()");
  const auto same = [&](std::string_view other) { return sdk::same_ascii(other, address); };
  const bool present = std::any_of(envelope_.recipients.begin(), envelope_.recipients.end(),
                                   [&](const sdk::Recipient& recipient) { return same(recipient.address); });
  const bool gone = std::any_of(removed_recipients_.begin(), removed_recipients_.end(), same);
  if (!present || gone) return false;
  removed_recipients_.emplace_back(address);
  return true;
}

}  // namespace tern::intake
