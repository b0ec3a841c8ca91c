// The MIME parser: one pass over the text builds the entity tree (header, body, type and the raw MIME
// fields of each part); sections and leaves are found in it on demand.
#include "mime_message.hpp"

#include <algorithm>
#include <charconv>
#include <tuple>
#include <utility>

#include "rfc5322_lexer.hpp"
#include "tern/sdk/header.hpp"

namespace tern::mime {
namespace {

constexpr std::size_t npos = std::string_view::npos;

// Calls visit(part) for each body part of a multipart body (RFC 2046 section 5.1.1): a line "--boundary"
// (white space may follow) opens a part, "--boundary--" closes the multipart, the line end before either
// belongs to the delimiter. A part left open runs to the end. Stops when visit returns false.
template <typename Visit>
void for_each_part(std::string_view body, std::string_view boundary, Visit visit) {
  std::optional<std::size_t> start;
  std::size_t line = 0;
  for (;;) {
    const std::size_t newline = body.find('\n', line);
    const std::string_view content = body.substr(line, (newline == npos ? body.size() : newline) - line);
    if (content.starts_with("--") && content.substr(2).starts_with(boundary)) {
      const std::string_view rest = content.substr(2 + boundary.size());
      const bool close = rest.starts_with("--");
      if (close || std::all_of(rest.begin(), rest.end(), blank)) {
        if (start) {
          std::size_t stop = line;
          if (stop > *start && body[stop - 1] == '\n') --stop;
          if (stop > *start && body[stop - 1] == '\r') --stop;
          if (!visit(body.substr(*start, stop - *start))) return;
        }
        if (close) return;
        start = newline == npos ? body.size() : newline + 1;
      }
    }
    if (newline == npos) break;
    line = newline + 1;
  }
  if (start) visit(body.substr(*start));
}

// RFC 2045 tokens, quoted strings and comments, over a field value (Content-Type, Content-Disposition,
// Content-Transfer-Encoding), which it unfolds and keeps.
class MimeTokens {
 public:
  explicit MimeTokens(std::string_view raw) : text_(sdk::unfold(raw)) {}

  bool at_end() {
    skip_cfws();
    return position_ >= text_.size();
  }
  bool take(char c) {
    skip_cfws();
    if (position_ >= text_.size() || text_[position_] != c) return false;
    ++position_;
    return true;
  }
  std::string token() {
    skip_cfws();
    const std::size_t start = position_;
    while (position_ < text_.size() && token_char(text_[position_])) ++position_;
    return std::string(text_.substr(start, position_ - start));
  }
  // A parameter value: a quoted string, or (leniently) anything up to ';', white space or a comment.
  std::string value() {
    skip_cfws();
    std::string out;
    if (position_ < text_.size() && text_[position_] == '"') {
      ++position_;
      while (position_ < text_.size() && text_[position_] != '"') {
        if (text_[position_] == '\\' && position_ + 1 < text_.size()) ++position_;
        out += text_[position_++];
      }
      if (position_ < text_.size()) ++position_;
      return out;
    }
    while (position_ < text_.size() && text_[position_] != ';' && text_[position_] != '(' && !blank(text_[position_])) {
      out += text_[position_++];
    }
    return out;
  }
  // The parameters after a type: *(";" attribute "=" value), names upper-cased; what cannot be read is skipped
  // up to the next ';'.
  Parameters parameters() {
    Parameters out;
    while (!at_end()) {
      if (!take(';')) {
        while (position_ < text_.size() && text_[position_] != ';') ++position_;
        continue;
      }
      std::string name = token();
      if (name.empty() || !take('=')) continue;
      out.emplace_back(upper(name), value());
    }
    return out;
  }

 private:
  static bool token_char(char c) {
    const auto u = static_cast<unsigned char>(c);
    return u > ' ' && u != 0x7f && std::string_view("()<>@,;:\\\"/[]?=").find(c) == npos;
  }
  void skip_cfws() {
    while (position_ < text_.size()) {
      if (blank(text_[position_])) {
        ++position_;
      } else if (text_[position_] == '(') {
        position_ = after_comment(text_, position_);
      } else {
        break;
      }
    }
  }

  std::string text_;
  std::size_t position_ = 0;
};

}  // namespace

TypedValue parse_typed_value(std::string_view raw) {
  MimeTokens tokens(raw);
  TypedValue value{upper(tokens.token()), {}};
  value.parameters = tokens.parameters();
  return value;
}

MimeMessage::MimeMessage(std::string_view text) : text_(text) {
  parse(text, true, false, 0);
}

std::uint32_t MimeMessage::parse(std::string_view text, bool message, bool digest_part, int depth) {
  const auto index = static_cast<std::uint32_t>(entities_.size());
  Entity entity;
  std::tie(entity.header, entity.body) = sdk::split_header(text);
  entity.message = message;
  if (digest_part) {
    entity.type = "MESSAGE";
    entity.subtype = "RFC822";
  }
  std::optional<std::string_view> content_type;
  sdk::visit_header_fields(entity.header, [&](const sdk::HeaderField& field) {
    const std::string_view name = field.name;
    if (name.size() <= 8 || !sdk::same_ascii(name.substr(0, 8), "Content-")) return false;
    const std::pair<std::string_view, std::optional<std::string_view>*> fields[] = {
        {"Type", &content_type},
        {"Transfer-Encoding", &entity.encoding},
        {"ID", &entity.id},
        {"Description", &entity.description},
        {"Disposition", &entity.disposition},
        {"Language", &entity.language},
        {"Location", &entity.location}};
    for (const auto& [suffix, slot] : fields) {
      if (!*slot && sdk::same_ascii(name.substr(8), suffix)) *slot = field.raw;
    }
    return false;
  });
  if (content_type) {
    MimeTokens tokens(*content_type);
    std::string type = tokens.token();
    std::string subtype = tokens.take('/') ? tokens.token() : "";
    if (!type.empty() && !subtype.empty()) {
      entity.type = upper(type);
      entity.subtype = upper(subtype);
      entity.parameters = tokens.parameters();
    }
  }
  std::string boundary;
  for (const auto& [name, value] : entity.parameters) {
    if (name == "BOUNDARY" && boundary.empty()) boundary = value;
  }
  const bool room = depth < kMaxDepth && entities_.size() + 1 < kMaxParts;
  if (entity.multipart() && boundary.empty()) {
    entity.type = "TEXT";
    entity.subtype = "PLAIN";
    entity.parameters.clear();
  } else if ((entity.multipart() || entity.rfc822()) && !room) {
    entity.type = "APPLICATION";
    entity.subtype = "OCTET-STREAM";
  }
  const std::string_view body = entity.body;
  const bool multipart = entity.multipart();
  const bool rfc822 = entity.rfc822();
  const bool digest = multipart && entity.subtype == "DIGEST";
  entities_.push_back(std::move(entity));
  if (multipart) {
    for_each_part(body, boundary, [&](std::string_view part) {
      if (entities_.size() >= kMaxParts) return false;
      const std::uint32_t child = parse(part, false, digest, depth + 1);
      entities_[index].children.push_back(child);
      return true;
    });
  } else if (rfc822) {
    const std::uint32_t child = parse(body, true, false, depth + 1);
    entities_[index].children.push_back(child);
  }
  return index;
}

std::optional<MimeMessage::Section> MimeMessage::section(std::string_view part) const {
  if (part.empty()) return Section{text_, entities_[0].header, entities_[0].body, {}, true, {}, false};
  std::uint32_t current = 0;
  bool first = true;
  for (;;) {
    const std::size_t dot = part.find('.');
    const std::string_view digits = part.substr(0, dot);
    std::uint32_t number = 0;
    const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), number);
    if (digits.empty() || error != std::errc() || end != digits.data() + digits.size() || number == 0) {
      return std::nullopt;
    }
    // Where the numbered parts live: the message itself at first, then a multipart part or the message that
    // a message/rfc822 part encapsulates.
    std::uint32_t container = current;
    if (!first) {
      const Entity& entity = entities_[current];
      if (entity.rfc822() && !entity.children.empty()) {
        container = entity.children[0];
      } else if (!entity.multipart()) {
        return std::nullopt;
      }
    }
    const Entity& parent = entities_[container];
    if (parent.multipart()) {
      if (number > parent.children.size()) return std::nullopt;
      current = parent.children[number - 1];
    } else if (parent.message && number == 1) {
      current = container;
    } else {
      return std::nullopt;
    }
    first = false;
    if (dot == npos) break;
    part.remove_prefix(dot + 1);
  }
  const Entity& entity = entities_[current];
  Section result{entity.body, {}, {}, entity.header, false};
  result.encoding = entity.encoding.value_or(std::string_view());
  result.leaf = !entity.multipart() && !entity.rfc822();
  if (entity.rfc822() && !entity.children.empty()) {
    const Entity& inner = entities_[entity.children[0]];
    result.header = inner.header;
    result.body = inner.body;
    result.message = true;
  }
  return result;
}

std::vector<MimeMessage::Section> MimeMessage::leaves() const {
  std::vector<Section> found;
  for (const Entity& entity : entities_) {
    if (entity.multipart() || entity.rfc822()) continue;
    Section leaf{entity.body, {}, {}, entity.header, false};
    leaf.encoding = entity.encoding.value_or(std::string_view());
    leaf.leaf = true;
    leaf.type = entity.type + "/" + entity.subtype;
    const auto parameter = [](const Parameters& parameters, std::string_view wanted) {
      for (const auto& [name, value] : parameters) {
        if (name == wanted) return value;
      }
      return std::string();
    };
    leaf.charset = parameter(entity.parameters, "CHARSET");
    leaf.name = parameter(entity.parameters, "NAME");
    if (entity.disposition) {
      const TypedValue disposition = parse_typed_value(*entity.disposition);
      leaf.disposition = disposition.token;
      const std::string filename = parameter(disposition.parameters, "FILENAME");
      if (!filename.empty()) leaf.name = filename;
    }
    found.push_back(std::move(leaf));
  }
  return found;
}

std::optional<std::string> MimeMessage::decode(std::string_view encoding, std::string_view body) {
  const std::string name = parse_typed_value(encoding).token;
  if (name.empty() || name == "7BIT" || name == "8BIT" || name == "BINARY") return std::string(body);
  std::string out;
  if (name == "BASE64") {
    out.reserve(body.size() / 4 * 3);
    std::uint32_t bits = 0;
    int count = 0;
    for (char c : body) {
      int value = -1;
      if (c >= 'A' && c <= 'Z') value = c - 'A';
      if (c >= 'a' && c <= 'z') value = c - 'a' + 26;
      if (c >= '0' && c <= '9') value = c - '0' + 52;
      if (c == '+') value = 62;
      if (c == '/') value = 63;
      if (c == '=') break;
      if (value < 0) continue;
      bits = (bits << 6) | static_cast<std::uint32_t>(value);
      if (++count == 4) {
        out += static_cast<char>((bits >> 16) & 0xff);
        out += static_cast<char>((bits >> 8) & 0xff);
        out += static_cast<char>(bits & 0xff);
        bits = 0;
        count = 0;
      }
    }
    if (count == 2) out += static_cast<char>((bits >> 4) & 0xff);
    if (count == 3) {
      out += static_cast<char>((bits >> 10) & 0xff);
      out += static_cast<char>((bits >> 2) & 0xff);
    }
    return out;
  }
  if (name == "QUOTED-PRINTABLE") {
    const auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      return -1;
    };
    out.reserve(body.size());
    while (!body.empty()) {
      std::size_t end = body.find('\n');
      std::string_view line = body.substr(0, end);
      const bool ended = end != npos;
      body.remove_prefix(ended ? end + 1 : body.size());
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      // Trailing white space is transport padding (RFC 2045 section 6.7, rule 3).
      while (!line.empty() && (line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
      bool soft = false;
      for (std::size_t i = 0; i < line.size(); ++i) {
        if (line[i] != '=') {
          out += line[i];
        } else if (i + 1 == line.size()) {
          soft = true;  // "=" at the end of a line joins it to the next
        } else if (i + 2 < line.size() && hex(line[i + 1]) >= 0 && hex(line[i + 2]) >= 0) {
          out += static_cast<char>(hex(line[i + 1]) * 16 + hex(line[i + 2]));
          i += 2;
        } else {
          out += '=';
        }
      }
      if (ended && !soft) out += "\r\n";
    }
    return out;
  }
  return std::nullopt;
}

}  // namespace tern::mime
