#include "imap_syntax.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace tern::imap {
namespace {

// ASTRING-CHAR of RFC 3501 (']' included: mailbox names and tags may hold it), with the list wildcards.
bool atom_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u > ' ' && u < 0x7f && c != '(' && c != ')' && c != '{' && c != '"' && c != '\\';
}

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  bool at_end() const { return position_ + 2 == text_.size() && text_.substr(position_) == "\r\n"; }
  bool space() {
    if (position_ < text_.size() && text_[position_] == ' ') {
      ++position_;
      return true;
    }
    return false;
  }
  std::optional<std::string> atom() {
    std::size_t start = position_;
    while (position_ < text_.size() && atom_char(text_[position_])) ++position_;
    if (position_ == start) return std::nullopt;
    return std::string(text_.substr(start, position_ - start));
  }
  // An atom that may carry "[section]" and "<partial>" (FETCH BODY[HEADER.FIELDS (A B)]<0.100>).
  std::optional<std::string> section_atom() {
    std::size_t start = position_;
    // A flag is a backslash and an atom (\\Seen): the only place a backslash may stand.
    if (position_ < text_.size() && text_[position_] == '\\') ++position_;
    while (position_ < text_.size()) {
      char c = text_[position_];
      // A section runs to its ']', spaces and all; a '[' with no ']' is a mailbox name's character.
      const std::size_t close = c == '[' ? text_.find(']', position_) : std::string_view::npos;
      if (close != std::string_view::npos) {
        position_ = close + 1;
      } else if (atom_char(c) || c == '<' || c == '>') {
        ++position_;
      } else {
        break;
      }
    }
    if (position_ == start) return std::nullopt;
    return std::string(text_.substr(start, position_ - start));
  }
  std::optional<Value> value(int depth) {
    if (position_ >= text_.size() || depth > 8) return std::nullopt;
    const char c = text_[position_];
    if (c == '"') return quoted();
    if (c == '{') return literal();
    // A literal8 (RFC 3516): APPEND of a message that is binary.
    if (c == '~' && position_ + 1 < text_.size() && text_[position_ + 1] == '{') {
      ++position_;
      return literal();
    }
    if (c == '(') {
      ++position_;
      Value list{Value::Kind::list, {}, {}};
      while (position_ < text_.size() && text_[position_] != ')') {
        if (!list.items.empty() && !space()) return std::nullopt;
        auto item = value(depth + 1);
        if (!item) return std::nullopt;
        list.items.push_back(std::move(*item));
      }
      if (position_ >= text_.size()) return std::nullopt;
      ++position_;
      return list;
    }
    auto text = section_atom();
    if (!text) return std::nullopt;
    return Value{Value::Kind::atom, std::move(*text), {}};
  }

 private:
  std::optional<Value> quoted() {
    ++position_;
    std::string out;
    while (position_ < text_.size()) {
      char c = text_[position_++];
      if (c == '"') return Value{Value::Kind::string, std::move(out), {}};
      if (c == '\\') {
        if (position_ >= text_.size()) return std::nullopt;
        c = text_[position_++];
        if (c != '\\' && c != '"') return std::nullopt;
      } else if (c == '\r' || c == '\n') {
        return std::nullopt;
      }
      out += c;
    }
    return std::nullopt;
  }
  std::optional<Value> literal() {
    const std::size_t close = text_.find('}', position_);
    if (close == std::string_view::npos) return std::nullopt;
    std::string_view digits = text_.substr(position_ + 1, close - position_ - 1);
    if (!digits.empty() && digits.back() == '+') digits.remove_suffix(1);
    std::uint64_t size = 0;
    auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), size);
    if (digits.empty() || error != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
    if (text_.substr(close + 1, 2) != "\r\n" || close + 3 + size > text_.size()) return std::nullopt;
    Value result{Value::Kind::string, std::string(text_.substr(close + 3, size)), {}};
    position_ = close + 3 + size;
    return result;
  }

  std::string_view text_;
  std::size_t position_ = 0;
};

std::string upper(std::string_view text) {
  std::string result(text);
  std::transform(result.begin(), result.end(), result.begin(), [](unsigned char c) { return std::toupper(c); });
  return result;
}

}  // namespace

bool Value::is_atom(std::string_view name) const {
  return kind == Kind::atom && upper(text) == name;
}

bool is_tag(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return atom_char(c) && c != '+'; });
}

std::optional<Command> parse_command(std::string_view text, std::string& tag) {
  Parser parser(text);
  Command command;
  auto tag_atom = parser.atom();
  if (!tag_atom || !is_tag(*tag_atom)) return std::nullopt;
  tag = *tag_atom;
  command.tag = *tag_atom;
  if (!parser.space()) return std::nullopt;
  auto name = parser.atom();
  if (!name) return std::nullopt;
  command.name = upper(*name);
  if (command.name == "UID") {
    if (!parser.space()) return std::nullopt;
    auto sub = parser.atom();
    if (!sub) return std::nullopt;
    command.name += " " + upper(*sub);
  }
  while (!parser.at_end()) {
    if (!parser.space()) return std::nullopt;
    auto argument = parser.value(0);
    if (!argument) return std::nullopt;
    command.arguments.push_back(std::move(*argument));
  }
  return command;
}

std::optional<std::pair<std::uint64_t, bool>> trailing_literal(std::string_view line) {
  if (!line.ends_with("}\r\n")) return std::nullopt;
  const std::size_t open = line.rfind('{');
  if (open == std::string_view::npos) return std::nullopt;
  std::string_view digits = line.substr(open + 1, line.size() - open - 4);
  const bool non_synchronizing = !digits.empty() && digits.back() == '+';
  if (non_synchronizing) digits.remove_suffix(1);
  std::uint64_t size = 0;
  auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), size);
  if (digits.empty() || error != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  return std::pair{size, non_synchronizing};
}

std::optional<std::vector<std::pair<std::uint32_t, std::uint32_t>>> parse_sequence_set(std::string_view text,
                                                                                       std::uint32_t largest) {
  std::vector<std::pair<std::uint32_t, std::uint32_t>> ranges;
  auto number = [largest](std::string_view part) -> std::optional<std::uint32_t> {
    if (part == "*") return largest;
    std::uint32_t value = 0;
    auto [end, error] = std::from_chars(part.data(), part.data() + part.size(), value);
    if (part.empty() || error != std::errc() || end != part.data() + part.size() || value == 0) return std::nullopt;
    return value;
  };
  while (!text.empty()) {
    const std::size_t comma = text.find(',');
    const std::string_view item = text.substr(0, comma);
    const std::size_t colon = item.find(':');
    auto first = number(item.substr(0, colon));
    auto last = colon == std::string_view::npos ? first : number(item.substr(colon + 1));
    if (!first || !last) return std::nullopt;
    ranges.emplace_back(std::min(*first, *last), std::max(*first, *last));
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
    if (text.empty()) return std::nullopt;
  }
  if (ranges.empty()) return std::nullopt;
  return ranges;
}

bool in_sequence_set(const std::vector<std::pair<std::uint32_t, std::uint32_t>>& set, std::uint32_t number) {
  return std::any_of(set.begin(), set.end(),
                     [number](const auto& range) { return number >= range.first && number <= range.second; });
}

std::string compact_set(const std::vector<std::uint32_t>& numbers) {
  std::string out;
  for (std::size_t i = 0; i < numbers.size();) {
    std::size_t j = i;
    while (j + 1 < numbers.size() && numbers[j + 1] == numbers[j] + 1) ++j;
    out += (out.empty() ? "" : ",") +
           (i == j ? fmt::format("{}", numbers[i]) : fmt::format("{}:{}", numbers[i], numbers[j]));
    i = j + 1;
  }
  return out;
}

bool has_flag(std::string_view flags, std::string_view flag) {
  const std::string wanted = " " + upper(flag) + " ";
  return (" " + upper(flags) + " ").find(wanted) != std::string::npos;
}

namespace {

constexpr char kUtf7Alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

void append_utf8(std::string& out, std::uint32_t code) {
  if (code < 0x80) {
    out += static_cast<char>(code);
  } else if (code < 0x800) {
    out += static_cast<char>(0xc0 | (code >> 6));
    out += static_cast<char>(0x80 | (code & 0x3f));
  } else if (code < 0x10000) {
    out += static_cast<char>(0xe0 | (code >> 12));
    out += static_cast<char>(0x80 | ((code >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (code & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (code >> 18));
    out += static_cast<char>(0x80 | ((code >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((code >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (code & 0x3f));
  }
}

// The next code point of UTF-8 text; a byte that does not start a valid sequence stands for itself.
std::uint32_t next_code_point(std::string_view text, std::size_t& i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  const int length = lead >= 0xf0 && lead < 0xf5 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc2 && lead < 0xe0 ? 2 : 1;
  if (length > 1 && i + static_cast<std::size_t>(length) <= text.size()) {
    std::uint32_t code = lead & (0x7f >> length);
    bool valid = true;
    for (int k = 1; k < length; ++k) {
      valid = valid && (byte(i + k) & 0xc0) == 0x80;
      code = (code << 6) | (byte(i + k) & 0x3f);
    }
    if (valid) {
      i += static_cast<std::size_t>(length);
      return code;
    }
  }
  return byte(i++);
}

}  // namespace

std::optional<std::string> utf7_to_utf8(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size();) {
    const char c = text[i++];
    if (c != '&') {
      if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) return std::nullopt;
      out += c;
      continue;
    }
    const std::size_t end = text.find('-', i);
    if (end == std::string_view::npos) return std::nullopt;
    if (end == i) {  // "&-" is '&'
      out += '&';
      i = end + 1;
      continue;
    }
    std::uint32_t bits = 0;
    int count = 0;
    std::uint32_t high = 0;  // a high surrogate waiting for its low half
    for (; i < end; ++i) {
      const char* found = std::strchr(kUtf7Alphabet, text[i]);
      if (!found || text[i] == '\0') return std::nullopt;
      bits = (bits << 6) | static_cast<std::uint32_t>(found - kUtf7Alphabet);
      count += 6;
      if (count < 16) continue;
      count -= 16;
      const std::uint32_t unit = (bits >> count) & 0xffff;
      if (high != 0) {
        if (unit < 0xdc00 || unit > 0xdfff) return std::nullopt;
        append_utf8(out, 0x10000 + ((high - 0xd800) << 10) + (unit - 0xdc00));
        high = 0;
      } else if (unit >= 0xd800 && unit <= 0xdbff) {
        high = unit;
      } else if ((unit >= 0xdc00 && unit <= 0xdfff) || unit <= 0x7f) {
        return std::nullopt;  // a lone low surrogate, ASCII that should have stood for itself, or a control
      } else {
        append_utf8(out, unit);
      }
    }
    // Leftover bits must be the zero padding of the last unit.
    if (high != 0 || count >= 6 || (bits & ((1u << count) - 1)) != 0) return std::nullopt;
    i = end + 1;
  }
  return out;
}

std::string utf8_to_utf7(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size();) {
    const auto u = static_cast<unsigned char>(text[i]);
    if (u >= 0x20 && u <= 0x7e) {
      out += u == '&' ? "&-" : std::string(1, static_cast<char>(u));
      ++i;
      continue;
    }
    // A run of everything else, as UTF-16 in modified base64.
    std::vector<std::uint16_t> units;
    while (i < text.size() &&
           !(static_cast<unsigned char>(text[i]) >= 0x20 && static_cast<unsigned char>(text[i]) <= 0x7e)) {
      const std::uint32_t code = next_code_point(text, i);
      if (code >= 0x10000) {
        units.push_back(static_cast<std::uint16_t>(0xd800 + ((code - 0x10000) >> 10)));
        units.push_back(static_cast<std::uint16_t>(0xdc00 + ((code - 0x10000) & 0x3ff)));
      } else {
        units.push_back(static_cast<std::uint16_t>(code));
      }
    }
    out += '&';
    std::uint32_t bits = 0;
    int count = 0;
    for (std::uint16_t unit : units) {
      bits = (bits << 16) | unit;
      count += 16;
      while (count >= 6) {
        count -= 6;
        out += kUtf7Alphabet[(bits >> count) & 0x3f];
      }
    }
    if (count > 0) out += kUtf7Alphabet[(bits << (6 - count)) & 0x3f];
    out += '-';
  }
  return out;
}

std::string imap_string(std::string_view text) {
  const bool plain = text.size() < 1024 && std::all_of(text.begin(), text.end(), [](char c) {
                       const auto u = static_cast<unsigned char>(c);
                       return u >= ' ' && u < 0x7f;
                     });
  if (!plain) return fmt::format("{{{}}}\r\n{}", text.size(), text);
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

std::optional<std::uint64_t> modifier(const Value& list, std::string_view name) {
  if (list.kind != Value::Kind::list || list.items.size() != 2 || !list.items[0].is_atom(name)) return std::nullopt;
  const std::string& digits = list.items[1].text;
  if (digits.empty() || !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  return std::strtoull(digits.c_str(), nullptr, 10);
}

}  // namespace tern::imap
