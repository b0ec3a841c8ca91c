#include "spf_record.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>

#include "spf_macro.hpp"
#include "tern/sdk/text.hpp"

namespace tern::spf {

namespace {

// A prefix length: "0", or digits without a leading zero, up to `largest`.
std::optional<int> prefix_length(std::string_view digits, int largest) {
  if (digits.empty() || digits.size() > 3) return std::nullopt;
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
    return std::nullopt;
  if (digits.size() > 1 && digits[0] == '0') return std::nullopt;
  const int value = std::stoi(std::string(digits));
  if (value > largest) return std::nullopt;
  return value;
}

bool all_digits(std::string_view text) {
  return !text.empty() &&
         std::all_of(text.begin(), text.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
}

// Takes `separator` and a prefix length off the end of `rest` into `length`. A separator not followed by digits
// to the end is left where it is: it belongs to the domain-spec ("a:foo:bar/baz.example.com"). False for digits
// that are no prefix length.
bool take_prefix_length(std::string_view& rest, std::string_view separator, int largest, int& length) {
  const std::size_t at = rest.rfind(separator);
  if (at == std::string_view::npos || !all_digits(rest.substr(at + separator.size()))) return true;
  const std::optional<int> value = prefix_length(rest.substr(at + separator.size()), largest);
  if (!value) return false;
  length = *value;
  rest = rest.substr(0, at);
  return true;
}

// "//n" (IPv6) and "/n" (IPv4) off the end of `rest`, as the a and mx mechanisms allow.
bool take_dual_cidr(std::string_view& rest, Mechanism& mechanism) {
  return take_prefix_length(rest, "//", 128, mechanism.cidr6) && take_prefix_length(rest, "/", 32, mechanism.cidr4);
}

// ":domain-spec", required or not; what follows the mechanism's name otherwise must be nothing.
bool take_domain(std::string_view rest, bool required, Mechanism& mechanism) {
  if (rest.empty()) return !required;
  if (rest[0] != ':' || !valid_domain_spec(rest.substr(1))) return false;
  mechanism.domain_spec = std::string(rest.substr(1));
  return true;
}

bool take_network(std::string_view rest, bool v6, Mechanism& mechanism) {
  if (rest.empty() || rest[0] != ':') return false;
  rest.remove_prefix(1);
  const std::size_t slash = rest.find('/');
  if (slash != std::string_view::npos) {
    const auto length = prefix_length(rest.substr(slash + 1), v6 ? 128 : 32);
    if (!length) return false;
    (v6 ? mechanism.cidr6 : mechanism.cidr4) = *length;
    rest = rest.substr(0, slash);
  }
  const std::optional<inet::Address> network = inet::Address::parse(rest, false);
  if (!network || network->v6 != v6) return false;
  mechanism.network = *network;
  return true;
}

std::optional<Mechanism> parse_mechanism(std::string_view term) {
  Mechanism mechanism;
  mechanism.text = std::string(term);
  if (!term.empty() && std::strchr("+-~?", term[0]) != nullptr) {
    mechanism.qualifier = term[0];
    term.remove_prefix(1);
  }
  const std::size_t end = std::min(term.find_first_of(":/"), term.size());
  const std::string name = sdk::lower_ascii(term.substr(0, end));
  std::string_view rest = term.substr(end);
  using Kind = Mechanism::Kind;
  bool valid = false;
  if (name == "all") {
    valid = rest.empty();
  } else if (name == "include" || name == "exists") {
    mechanism.kind = name == "include" ? Kind::include : Kind::exists;
    valid = take_domain(rest, true, mechanism);
  } else if (name == "a" || name == "mx") {
    mechanism.kind = name == "a" ? Kind::a : Kind::mx;
    valid = take_dual_cidr(rest, mechanism) && take_domain(rest, false, mechanism);
  } else if (name == "ptr") {
    mechanism.kind = Kind::ptr;
    valid = take_domain(rest, false, mechanism);
  } else if (name == "ip4" || name == "ip6") {
    mechanism.kind = name == "ip4" ? Kind::ip4 : Kind::ip6;
    valid = take_network(rest, name == "ip6", mechanism);
  }
  if (!valid) return std::nullopt;
  return mechanism;
}

// The name of a modifier term ("name=value"), or "" when the term is a mechanism.
std::string_view modifier_name(std::string_view term) {
  const std::size_t equals = term.find('=');
  if (equals == std::string_view::npos || equals == 0) return {};
  const std::string_view name = term.substr(0, equals);
  if (!std::isalpha(static_cast<unsigned char>(name[0]))) return {};
  const bool valid = std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
  return valid ? name : std::string_view();
}

}  // namespace

bool is_spf_record(std::string_view text) {
  return text.size() >= 6 && sdk::lower_ascii(text.substr(0, 6)) == "v=spf1" && (text.size() == 6 || text[6] == ' ');
}

std::optional<Record> parse_record(std::string_view text, std::string& problem) {
  if (std::any_of(text.begin(), text.end(), [](char c) { return c < 0x20 || c > 0x7e; })) {
    problem = "the record holds a character that is not printable ASCII";
    return std::nullopt;
  }
  Record record;
  std::size_t at = 6;  // after "v=spf1"
  while (at < text.size()) {
    if (text[at] == ' ') {
      ++at;
      continue;
    }
    const std::size_t end = std::min(text.find(' ', at), text.size());
    const std::string_view term = text.substr(at, end - at);
    at = end;
    const std::string name = sdk::lower_ascii(modifier_name(term));
    if (name.empty()) {
      std::optional<Mechanism> mechanism = parse_mechanism(term);
      if (!mechanism) {
        problem = "invalid term: " + std::string(term);
        return std::nullopt;
      }
      record.mechanisms.push_back(std::move(*mechanism));
      continue;
    }
    const std::string_view value = term.substr(name.size() + 1);
    if (name == "redirect" || name == "exp") {
      std::optional<std::string>& slot = name == "redirect" ? record.redirect : record.explanation;
      if (slot || !valid_domain_spec(value)) {
        problem = slot ? "the " + name + " modifier is given twice" : "invalid term: " + std::string(term);
        return std::nullopt;
      }
      slot = std::string(value);
    } else if (!valid_macro_string(value, false)) {
      problem = "invalid term: " + std::string(term);
      return std::nullopt;
    }
  }
  return record;
}

}  // namespace tern::spf
