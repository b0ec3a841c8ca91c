#include "smtp_syntax.hpp"

#include "tern/sdk/address.hpp"

#include <algorithm>
#include <cctype>

namespace tern::smtp {
namespace {

bool atext(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("!#$%&'*+-/=?^_`{|}~").find(c) != std::string_view::npos ||
         static_cast<unsigned char>(c) >= 0x80;  // SMTPUTF8
}

bool valid_domain(std::string_view domain) {
  if (domain.size() >= 2 && domain.front() == '[' && domain.back() == ']') {
    std::string_view literal = domain.substr(1, domain.size() - 2);
    return !literal.empty() && std::all_of(literal.begin(), literal.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == ':';
    });
  }
  return sdk::is_domain_name(domain, true);
}

bool valid_local_part(std::string_view local) {
  if (local.empty() || local.size() > 64) return false;
  if (local.front() == '"') {
    if (local.size() < 2 || local.back() != '"') return false;
    for (std::size_t i = 1; i + 1 < local.size(); ++i) {
      char c = local[i];
      if (c == '\\') {
        if (++i + 1 >= local.size()) return false;
      } else if (c == '"' || c == '\r' || c == '\n') {
        return false;
      }
    }
    return true;
  }
  if (local.front() == '.' || local.back() == '.') return false;
  char previous = 0;
  for (char c : local) {
    if (c == '.' && previous == '.') return false;
    if (c != '.' && !atext(c)) return false;
    previous = c;
  }
  return true;
}

}  // namespace

std::optional<std::string> decode_xtext(std::string_view text) {
  std::string decoded;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '+') {
      if (i + 2 >= text.size()) return std::nullopt;
      auto hex = [](char h) -> int {
        if (h >= '0' && h <= '9') return h - '0';
        if (h >= 'A' && h <= 'F') return h - 'A' + 10;
        return -1;
      };
      const int high = hex(text[i + 1]);
      const int low = hex(text[i + 2]);
      if (high < 0 || low < 0) return std::nullopt;
      decoded += static_cast<char>(high * 16 + low);
      i += 2;
    } else if (c < '!' || c > '~' || c == '=') {
      return std::nullopt;
    } else {
      decoded += static_cast<char>(c);
    }
  }
  return decoded;
}

std::optional<std::string> parse_notify(std::string_view value) {
  std::string upper(value);
  std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char c) { return std::toupper(c); });
  if (upper == "NEVER") return upper;
  bool success = false;
  bool failure = false;
  bool delay = false;
  std::string_view rest(upper);
  while (!rest.empty()) {
    const std::size_t comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    bool* seen = item == "SUCCESS" ? &success : item == "FAILURE" ? &failure : item == "DELAY" ? &delay : nullptr;
    if (seen == nullptr || *seen) return std::nullopt;
    *seen = true;
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
    if (rest.empty()) return std::nullopt;
  }
  if (!success && !failure && !delay) return std::nullopt;
  return upper;
}

std::optional<std::string> parse_orcpt(std::string_view value) {
  const std::size_t semicolon = value.find(';');
  if (semicolon == std::string_view::npos || semicolon == 0 || semicolon + 1 == value.size()) return std::nullopt;
  const std::string_view type = value.substr(0, semicolon);
  if (!std::all_of(type.begin(), type.end(),
                   [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-'; })) {
    return std::nullopt;
  }
  std::optional<std::string> address = decode_xtext(value.substr(semicolon + 1));
  if (!address) return std::nullopt;
  return std::string(type) + ";" + *address;
}

std::pair<std::string, std::string_view> split_command(std::string_view line) {
  std::size_t space = line.find(' ');
  std::string verb(line.substr(0, space));
  std::transform(verb.begin(), verb.end(), verb.begin(), [](unsigned char c) { return std::toupper(c); });
  std::string_view rest = space == std::string_view::npos ? std::string_view() : line.substr(space + 1);
  return {std::move(verb), rest};
}

bool valid_mailbox(std::string_view address) {
  // The local part may be quoted and hold '@': the domain starts after the last '@'.
  std::size_t at = address.rfind('@');
  if (at == std::string_view::npos) return false;
  return valid_local_part(address.substr(0, at)) && valid_domain(address.substr(at + 1));
}

std::optional<PathArgument> parse_path_argument(std::string_view argument, std::string_view keyword) {
  if (argument.size() < keyword.size() + 1) return std::nullopt;
  for (std::size_t i = 0; i < keyword.size(); ++i) {
    if (std::toupper(static_cast<unsigned char>(argument[i])) != keyword[i]) return std::nullopt;
  }
  argument.remove_prefix(keyword.size());
  if (argument.front() != ':') return std::nullopt;
  argument.remove_prefix(1);
  // Some clients put a space after the colon; Postfix and others accept it.
  while (!argument.empty() && argument.front() == ' ') argument.remove_prefix(1);
  if (argument.empty() || argument.front() != '<') return std::nullopt;

  // Find the closing bracket outside a quoted string.
  std::size_t close = std::string_view::npos;
  bool quoted = false;
  for (std::size_t i = 1; i < argument.size(); ++i) {
    char c = argument[i];
    if (quoted && c == '\\') {
      ++i;
    } else if (c == '"') {
      quoted = !quoted;
    } else if (c == '>' && !quoted) {
      close = i;
      break;
    }
  }
  if (close == std::string_view::npos) return std::nullopt;
  std::string_view path = argument.substr(1, close - 1);
  std::string_view rest = argument.substr(close + 1);

  if (!path.empty() && path.front() == '@') {
    std::size_t colon = path.find(':');
    if (colon == std::string_view::npos) return std::nullopt;
    path.remove_prefix(colon + 1);
  }
  PathArgument result;
  if (keyword == "TO" && lower_ascii(path) == "postmaster") {
    // RFC 5321 section 4.5.1: <Postmaster> without a domain must be accepted; the caller resolves it.
    result.address = "postmaster";
  } else if (!path.empty()) {
    if (!valid_mailbox(path)) return std::nullopt;
    result.address = std::string(path);
  } else if (keyword != "FROM") {
    return std::nullopt;
  }

  while (!rest.empty()) {
    if (rest.front() != ' ') return std::nullopt;
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    if (rest.empty()) break;
    std::size_t end = rest.find(' ');
    std::string_view parameter = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end);
    std::size_t equals = parameter.find('=');
    std::string name(parameter.substr(0, equals));
    if (name.empty()) return std::nullopt;
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::toupper(c); });
    std::string value = equals == std::string_view::npos ? std::string() : std::string(parameter.substr(equals + 1));
    result.parameters.emplace_back(std::move(name), std::move(value));
  }
  return result;
}

bool DataReader::add(std::string_view line, bool too_long) {
  if (too_long) {
    too_long_ = true;
    after_crlf_ = line.ends_with("\r\n");
    return false;
  }
  if (line == ".\r\n" && after_crlf_) return true;
  after_crlf_ = line.size() >= 2 && line[line.size() - 2] == '\r';
  if (!after_crlf_ || line.substr(0, line.size() - 2).find('\r') != std::string_view::npos) bare_ = true;
  if (!line.empty() && line.front() == '.') line.remove_prefix(1);
  if (oversized_ || message_.size() + line.size() > max_size_) {
    oversized_ = true;
    return false;
  }
  message_.append(line);
  return false;
}

std::string DataReader::problem() const {
  if (oversized_) return "552 5.3.4 Message size exceeds fixed maximum message size";
  if (too_long_) return "500 5.5.2 Line too long (1000 octets at most, CRLF included)";
  if (bare_) return "550 5.6.0 Bare CR or LF in message; lines must end with CRLF";
  return "";
}

}  // namespace tern::smtp
