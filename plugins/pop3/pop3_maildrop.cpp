// The TRANSACTION state (RFC 1939 section 5): STAT, LIST, UIDL, RETR, TOP, DELE, RSET, NOOP, and QUIT, which
// removes what DELE marked.
#include <fmt/format.h>

#include "pop3_session.hpp"
#include "pop3_syntax.hpp"

namespace tern::pop3 {
sdk::Task<void> Pop3Session::on_quit(std::string_view) {
  closing_ = true;
  if (!logged_in_) {
    ok("Bye");
    co_return;
  }
  std::vector<std::int64_t> ids;
  for (std::size_t i = 0; i < messages_.size(); ++i) {
    if (deleted_[i]) ids.push_back(messages_[i].id);
  }
  sdk::MailStore& store = server_.store();
  const std::optional<std::string> failure =
      co_await server_.attempt([&] { store.mailboxes().remove_messages(client_.user, ids); });
  // RFC 1939 releases the maildrop at QUIT whether the removal worked or not. Before the answer rather than
  // after, so that a client that logs in again as soon as it reads it is not told the maildrop is in use.
  locks_.unlock(client_.user);
  logged_in_ = false;
  if (failure) {
    server_.log().error(fmt::format("removing messages failed: {}", *failure));
    err("[SYS/TEMP] Some deleted messages not removed");
    co_return;
  }
  if (!ids.empty()) server_.mailbox_changed({client_.user});
  ok(fmt::format("Bye, {} messages deleted", ids.size()));
}

const sdk::MessageEntry* Pop3Session::message_argument(std::string_view argument) {
  std::optional<std::size_t> number = parse_number(argument);
  if (!number || *number == 0 || *number > messages_.size()) {
    err("No such message");
    return nullptr;
  }
  if (deleted_[*number - 1]) {
    err("Message is deleted");
    return nullptr;
  }
  return &messages_[*number - 1];
}

sdk::Task<void> Pop3Session::on_stat(std::string_view) {
  std::size_t count = 0;
  std::uint64_t octets = 0;
  for (std::size_t i = 0; i < messages_.size(); ++i) {
    if (deleted_[i]) continue;
    ++count;
    octets += messages_[i].size;
  }
  ok(fmt::format("{} {}", count, octets));
  co_return;
}

sdk::Task<void> Pop3Session::on_list(std::string_view argument) {
  if (!argument.empty()) {
    const sdk::MessageEntry* entry = message_argument(argument);
    if (entry) ok(fmt::format("{} {}", entry - messages_.data() + 1, entry->size));
    co_return;
  }
  std::string text = "+OK Scan listing follows\r\n";
  for (std::size_t i = 0; i < messages_.size(); ++i) {
    if (!deleted_[i]) text += fmt::format("{} {}\r\n", i + 1, messages_[i].size);
  }
  send(text + ".\r\n");
}

sdk::Task<void> Pop3Session::on_uidl(std::string_view argument) {
  if (!argument.empty()) {
    const sdk::MessageEntry* entry = message_argument(argument);
    if (entry) ok(fmt::format("{} {}", entry - messages_.data() + 1, entry->unique_id));
    co_return;
  }
  std::string text = "+OK Unique-ID listing follows\r\n";
  for (std::size_t i = 0; i < messages_.size(); ++i) {
    if (!deleted_[i]) text += fmt::format("{} {}\r\n", i + 1, messages_[i].unique_id);
  }
  send(text + ".\r\n");
}

sdk::Task<void> Pop3Session::send_message(const sdk::MessageEntry& entry, std::optional<std::size_t> body_lines) {
  const auto index = static_cast<std::size_t>(&entry - messages_.data());
  if (!ahead_.contains(index)) {
    // This message and the next ones not deleted, up to 128 or 4 MiB, in one read.
    constexpr std::size_t kAheadCount = 128;
    constexpr std::uint64_t kAheadOctets = 4 * 1024 * 1024;
    ahead_.clear();
    std::vector<std::size_t> indexes{index};
    std::uint64_t octets = entry.size;
    for (std::size_t next = index + 1; next < messages_.size() && indexes.size() < kAheadCount; ++next) {
      if (deleted_[next]) continue;
      if (octets + messages_[next].size > kAheadOctets) break;
      octets += messages_[next].size;
      indexes.push_back(next);
    }
    std::vector<std::int64_t> ids;
    for (std::size_t wanted : indexes) ids.push_back(messages_[wanted].id);
    std::vector<std::optional<std::string>> contents;
    sdk::MailStore& store = server_.store();
    const std::optional<std::string> failure =
        co_await server_.attempt([&] { contents = store.mailboxes().read_messages(client_.user, ids); });
    if (failure) {
      server_.log().error(fmt::format("reading message {} failed: {}", entry.id, *failure));
      err("[SYS/TEMP] Message not available, try again later");
      co_return;
    }
    for (std::size_t k = 0; k < indexes.size(); ++k) {
      if (contents[k]) ahead_.emplace(indexes[k], std::move(*contents[k]));
    }
  }
  const auto found = ahead_.find(index);
  if (found == ahead_.end()) {
    // Removed since login, by IMAP or another client: it cannot be sent any more.
    err("Message was removed by another session");
    co_return;
  }
  // The octet count is the message's as stored; the dot-stuffed, CRLF-ended lines that follow are what RFC
  // 1939 sends (LIST says the same size).
  send(fmt::format("+OK {} octets\r\n", found->second.size()));
  append_multiline(pending_, found->second, body_lines);
  ahead_.erase(found);
}

sdk::Task<void> Pop3Session::on_retr(std::string_view argument) {
  const sdk::MessageEntry* entry = message_argument(argument);
  if (entry) {
    co_await send_message(*entry, std::nullopt);
  }
}

sdk::Task<void> Pop3Session::on_top(std::string_view argument) {
  std::size_t space = argument.find(' ');
  std::optional<std::size_t> lines =
      space == std::string_view::npos ? std::nullopt : parse_number(argument.substr(space + 1));
  if (!lines) {
    err("Syntax: TOP msg n");
    co_return;
  }
  const sdk::MessageEntry* entry = message_argument(argument.substr(0, space));
  if (entry) {
    co_await send_message(*entry, lines);
  }
}

sdk::Task<void> Pop3Session::on_dele(std::string_view argument) {
  const sdk::MessageEntry* entry = message_argument(argument);
  if (entry) {
    std::size_t index = static_cast<std::size_t>(entry - messages_.data());
    deleted_[index] = true;
    ahead_.erase(index);
    ok(fmt::format("Message {} deleted", index + 1));
  }
  co_return;
}

sdk::Task<void> Pop3Session::on_rset(std::string_view) {
  std::fill(deleted_.begin(), deleted_.end(), false);
  ok(fmt::format("{} messages", messages_.size()));
  co_return;
}

sdk::Task<void> Pop3Session::on_noop(std::string_view) {
  ok("");
  co_return;
}

}  // namespace tern::pop3
