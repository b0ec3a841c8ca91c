#include "recipients.hpp"

#include "tern/sdk/text.hpp"

namespace tern::fetch {
namespace {

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// The header section: up to the first empty line.
std::string_view header_of(std::string_view message) {
  const std::size_t end = message.find("\r\n\r\n");
  return end == std::string_view::npos ? message : message.substr(0, end + 2);
}

}  // namespace

std::vector<std::string> addresses_in(std::string_view value) {
  std::vector<std::string> found;
  std::string piece;
  int comment = 0;
  bool quoted = false;
  bool angle = false;
  std::string in_angle;
  const auto finish = [&] {
    std::string address(trim(angle || !in_angle.empty() ? std::string_view(in_angle) : std::string_view(piece)));
    // "group: a@b, c@d;" leaves "group: a@b" in the first piece.
    const std::size_t colon = address.find(':');
    if (colon != std::string::npos && address.find('@') != std::string::npos && colon < address.find('@')) {
      address = std::string(trim(std::string_view(address).substr(colon + 1)));
    }
    if (!address.empty() && address.find('@') != std::string::npos && address.find(' ') == std::string::npos) {
      found.push_back(sdk::lower_ascii(address));
    }
    piece.clear();
    in_angle.clear();
    angle = false;
  };
  for (std::size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    if (quoted) {
      if (c == '\\' && i + 1 < value.size()) {
        ++i;
      } else if (c == '"') {
        quoted = false;
      }
      continue;  // a display name, never the address
    }
    if (comment > 0) {
      if (c == '\\' && i + 1 < value.size()) ++i;
      if (c == '(') ++comment;
      if (c == ')') --comment;
      continue;
    }
    if (c == '"') {
      quoted = true;
    } else if (c == '(') {
      comment = 1;
    } else if (c == '<') {
      angle = true;
      in_angle.clear();
    } else if (c == '>') {
      angle = false;
    } else if ((c == ',' || c == ';') && !angle) {
      finish();
    } else if (angle) {
      in_angle += c;
    } else {
      piece += c;
    }
  }
  finish();
  return found;
}

std::vector<std::string> field_values(std::string_view message, std::string_view name) {
  std::vector<std::string> values;
  std::string_view header = header_of(message);
  const std::string wanted = sdk::lower_ascii(name);
  bool inside = false;
  while (!header.empty()) {
    const std::size_t end = header.find("\r\n");
    const std::string_view line = header.substr(0, end);
    header.remove_prefix(end == std::string_view::npos ? header.size() : end + 2);
    if (!line.empty() && (line.front() == ' ' || line.front() == '\t')) {
      if (inside) values.back().append(" ").append(trim(line));
      continue;
    }
    const std::size_t colon = line.find(':');
    inside = colon != std::string_view::npos && sdk::lower_ascii(trim(line.substr(0, colon))) == wanted;
    if (inside) values.emplace_back(trim(line.substr(colon + 1)));
  }
  return values;
}

std::string received_for(std::string_view message) {
  const std::vector<std::string> received = field_values(message, "Received");
  if (received.empty()) return "";
  const std::string lowered = sdk::lower_ascii(received.front());
  std::size_t at = 0;
  while ((at = lowered.find("for", at)) != std::string::npos) {
    const bool word = (at == 0 || lowered[at - 1] == ' ') && at + 3 < lowered.size() && lowered[at + 3] == ' ';
    at += 3;
    if (!word) continue;
    std::string_view rest = trim(std::string_view(lowered).substr(at));
    const std::size_t end = rest.find_first_of(";");
    std::vector<std::string> addresses = addresses_in(rest.substr(0, end));
    if (!addresses.empty()) return addresses.front();
  }
  return "";
}

std::vector<std::vector<std::string>> candidate_recipients(std::string_view message,
                                                           const std::vector<std::string>& sources) {
  std::vector<std::vector<std::string>> candidates;
  for (const std::string& source : sources) {
    std::vector<std::string> addresses;
    if (sdk::lower_ascii(source) == "received") {
      std::string address = received_for(message);
      if (!address.empty()) addresses.push_back(std::move(address));
    } else {
      for (const std::string& value : field_values(message, source)) {
        for (std::string& address : addresses_in(value)) addresses.push_back(std::move(address));
      }
    }
    candidates.push_back(std::move(addresses));
  }
  return candidates;
}

}  // namespace tern::fetch
