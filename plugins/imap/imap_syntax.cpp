#include "imap_syntax.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

namespace tern::imap {
namespace {

bool atom_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u > ' ' && u < 0x7f && c != '(' && c != ')' && c != '{' && c != '"' && c != '\\' && c != ']';
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
      if (c == '[') {
        const std::size_t close = text_.find(']', position_);
        if (close == std::string_view::npos) return std::nullopt;
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

std::optional<Command> parse_command(std::string_view text, std::string& tag) {
  Parser parser(text);
  Command command;
  auto tag_atom = parser.atom();
  if (!tag_atom || tag_atom->find('+') != std::string::npos) return std::nullopt;
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

}  // namespace tern::imap
