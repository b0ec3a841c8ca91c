#include "pop3_client.hpp"

#include <fmt/format.h>

#include "tern/sdk/text.hpp"

namespace tern::fetch {
namespace {

constexpr std::size_t kLineLimit = 1024 * 1024;  // a message line can be long; a status line is not

}  // namespace

sdk::Task<bool> Pop3Client::command(std::string line, std::string shown) {
  if (!line.empty()) {
    const bool written = co_await connection_.write(line + "\r\n");
    if (!written) {
      error_ = fmt::format("{}: connection lost", shown);
      co_return false;
    }
  }
  std::string reply;
  const sdk::ReadStatus status = co_await connection_.read_line(reply, kLineLimit);
  if (status != sdk::ReadStatus::ok) {
    error_ = fmt::format("{}: {}", shown, status == sdk::ReadStatus::timeout ? "no answer in time" : "connection lost");
    co_return false;
  }
  status_ = std::string(sdk::strip_line_end(reply));
  if (!status_.starts_with("+OK")) {
    error_ = fmt::format("{}: {}", shown, status_);
    co_return false;
  }
  co_return true;
}

sdk::Task<std::optional<std::string>> Pop3Client::multiline() {
  std::string out;
  std::string line;
  for (;;) {
    const sdk::ReadStatus status = co_await connection_.read_line(line, kLineLimit);
    if (status != sdk::ReadStatus::ok) {
      error_ = status == sdk::ReadStatus::too_long ? "a line over 1 MiB" : "connection lost in a reply";
      co_return std::nullopt;
    }
    std::string_view text = sdk::strip_line_end(line);
    if (text == ".") co_return out;
    if (text.starts_with('.')) text.remove_prefix(1);
    out.append(text).append("\r\n");
  }
}

sdk::Task<bool> Pop3Client::greeting() {
  return command("", "greeting");
}

sdk::Task<bool> Pop3Client::start_tls() {
  const bool accepted = co_await command("STLS", "STLS");
  if (!accepted) co_return false;
  const bool secured = co_await connection_.start_tls();
  if (!secured) error_ = "STLS: TLS handshake failed";
  co_return secured;
}

sdk::Task<bool> Pop3Client::login(std::string user, std::string password) {
  const bool known = co_await command("USER " + user, "USER");
  if (!known) co_return false;
  // The password is never in a log line.
  const bool accepted = co_await command("PASS " + password, "PASS");
  co_return accepted;
}

sdk::Task<std::optional<std::vector<std::pair<int, std::string>>>> Pop3Client::list_uidls() {
  const bool listed = co_await command("UIDL", "UIDL");
  if (!listed) co_return std::nullopt;
  const std::optional<std::string> text = co_await multiline();
  if (!text) co_return std::nullopt;
  std::vector<std::pair<int, std::string>> uidls;
  std::string_view rest = *text;
  while (!rest.empty()) {
    const std::size_t end = rest.find("\r\n");
    const std::string_view line = rest.substr(0, end);
    rest.remove_prefix(end + 2);
    const std::size_t space = line.find(' ');
    if (space == std::string_view::npos) continue;
    const int number = std::atoi(std::string(line.substr(0, space)).c_str());
    if (number > 0) uidls.emplace_back(number, std::string(line.substr(space + 1)));
  }
  co_return uidls;
}

sdk::Task<std::optional<std::string>> Pop3Client::retrieve(int number) {
  const bool found = co_await command(fmt::format("RETR {}", number), fmt::format("RETR {}", number));
  if (!found) co_return std::nullopt;
  std::optional<std::string> message = co_await multiline();
  co_return message;
}

sdk::Task<bool> Pop3Client::remove(int number) {
  return command(fmt::format("DELE {}", number), fmt::format("DELE {}", number));
}

sdk::Task<bool> Pop3Client::quit() {
  return command("QUIT", "QUIT");
}

}  // namespace tern::fetch
