#include "imap_client.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

#include "tern/sdk/text.hpp"

namespace tern::fetch {
namespace {

constexpr std::size_t kLineLimit = 1024 * 1024;
constexpr std::uint64_t kLiteralLimit = 256 * 1024 * 1024;

// A quoted string for LOGIN and SELECT.
std::string imap_quoted(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace

sdk::Task<std::optional<std::string>> ImapClient::response() {
  std::string whole;
  std::string line;
  for (;;) {
    const sdk::ReadStatus status = co_await connection_.read_line(line, kLineLimit);
    if (status != sdk::ReadStatus::ok) {
      error_ = status == sdk::ReadStatus::timeout ? "no answer in time" : "connection lost";
      co_return std::nullopt;
    }
    whole += line;
    // A line ending in {n} announces n octets of literal, then the response goes on.
    const std::string_view text = sdk::strip_line_end(line);
    if (text.empty() || text.back() != '}') co_return whole;
    const std::size_t open = text.rfind('{');
    std::uint64_t size = 0;
    const auto [end, failure] = std::from_chars(text.data() + open + 1, text.data() + text.size() - 1, size);
    if (open == std::string_view::npos || failure != std::errc() || size > kLiteralLimit) co_return whole;
    const sdk::ReadStatus literal = co_await connection_.read_bytes(whole, size);
    if (literal != sdk::ReadStatus::ok) {
      error_ = "connection lost in a literal";
      co_return std::nullopt;
    }
  }
}

sdk::Task<bool> ImapClient::command(std::string line, std::string shown, std::vector<std::string>* untagged) {
  const std::string tag = fmt::format("t{}", ++tag_);
  const bool written = co_await connection_.write(tag + " " + line + "\r\n");
  if (!written) {
    error_ = fmt::format("{}: connection lost", shown);
    co_return false;
  }
  for (;;) {
    std::optional<std::string> reply = co_await response();
    if (!reply) {
      error_ = fmt::format("{}: {}", shown, error_);
      co_return false;
    }
    if (reply->starts_with(tag + " ")) {
      const std::string_view status = sdk::strip_line_end(*reply).substr(tag.size() + 1);
      const bool ok = sdk::lower_ascii(status.substr(0, 2)) == "ok" && (status.size() == 2 || status[2] == ' ');
      if (ok) co_return true;
      error_ = fmt::format("{}: {}", shown, status);
      co_return false;
    }
    if (untagged != nullptr) untagged->push_back(std::move(*reply));
  }
}

sdk::Task<bool> ImapClient::greeting() {
  std::optional<std::string> line = co_await response();
  if (!line || !line->starts_with("* OK")) {
    error_ = line ? "greeting: " + std::string(sdk::strip_line_end(*line)) : "greeting: " + error_;
    co_return false;
  }
  co_return true;
}

sdk::Task<bool> ImapClient::start_tls() {
  const bool accepted = co_await command("STARTTLS", "STARTTLS");
  if (!accepted) co_return false;
  const bool secured = co_await connection_.start_tls();
  if (!secured) error_ = "STARTTLS: TLS handshake failed";
  co_return secured;
}

sdk::Task<bool> ImapClient::login(std::string user, std::string password) {
  // The password is never in a log line: the command is shown as LOGIN only.
  const bool accepted = co_await command("LOGIN " + imap_quoted(user) + " " + imap_quoted(password), "LOGIN");
  co_return accepted;
}

sdk::Task<std::optional<std::uint32_t>> ImapClient::select(std::string mailbox) {
  std::vector<std::string> untagged;
  const bool selected = co_await command("SELECT " + imap_quoted(mailbox), "SELECT " + mailbox, &untagged);
  if (!selected) co_return std::nullopt;
  std::uint32_t uidvalidity = 0;
  for (const std::string& line : untagged) {
    const std::size_t at = line.find("[UIDVALIDITY ");
    if (at != std::string::npos)
      uidvalidity = static_cast<std::uint32_t>(std::strtoul(line.c_str() + at + 13, nullptr, 10));
  }
  co_return uidvalidity;
}

sdk::Task<std::optional<std::vector<std::uint32_t>>> ImapClient::uids() {
  std::vector<std::string> untagged;
  const bool searched = co_await command("UID SEARCH UNDELETED", "UID SEARCH", &untagged);
  if (!searched) co_return std::nullopt;
  std::vector<std::uint32_t> found;
  for (const std::string& line : untagged) {
    if (!line.starts_with("* SEARCH")) continue;
    std::string_view rest = sdk::strip_line_end(line).substr(8);
    while (!rest.empty()) {
      const std::size_t space = rest.find(' ');
      const std::string_view word = rest.substr(0, space);
      rest.remove_prefix(space == std::string_view::npos ? rest.size() : space + 1);
      std::uint32_t uid = 0;
      if (std::from_chars(word.data(), word.data() + word.size(), uid).ec == std::errc() && uid > 0) {
        found.push_back(uid);
      }
    }
  }
  std::sort(found.begin(), found.end());
  co_return found;
}

sdk::Task<std::optional<std::string>> ImapClient::fetch(std::uint32_t uid) {
  std::vector<std::string> untagged;
  const bool fetched =
      co_await command(fmt::format("UID FETCH {} (BODY.PEEK[])", uid), fmt::format("UID FETCH {}", uid), &untagged);
  if (!fetched) co_return std::nullopt;
  for (const std::string& reply : untagged) {
    // "* n FETCH (UID u BODY[] {size}\r\n<octets>)\r\n": the literal after BODY[].
    const std::size_t item = reply.find("BODY[] {");
    if (!reply.starts_with("* ") || item == std::string::npos) continue;
    const std::size_t open = item + 7;
    const std::size_t close = reply.find("}\r\n", open);
    if (close == std::string::npos) continue;
    const std::size_t size = std::strtoull(reply.c_str() + open + 1, nullptr, 10);
    if (close + 3 + size > reply.size()) continue;
    co_return reply.substr(close + 3, size);
  }
  error_ = fmt::format("UID FETCH {}: no message in the answer", uid);
  co_return std::nullopt;
}

sdk::Task<bool> ImapClient::add_flags(std::uint32_t uid, std::string flags) {
  const bool stored =
      co_await command(fmt::format("UID STORE {} +FLAGS.SILENT ({})", uid, flags), fmt::format("UID STORE {}", uid));
  co_return stored;
}

sdk::Task<bool> ImapClient::close() {
  const bool closed = co_await command("CLOSE", "CLOSE");
  co_return closed;
}

sdk::Task<bool> ImapClient::logout() {
  const bool done = co_await command("LOGOUT", "LOGOUT");
  co_return done;
}

}  // namespace tern::fetch
