// The MIME parser: one pass over the text builds the entity tree (header, body, type and the raw MIME
// fields of each part); ENVELOPE, BODYSTRUCTURE and sections are written from it on demand.
#include "mime_message.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <tuple>
#include <utility>

#include "imap_syntax.hpp"

namespace tern::imap {
namespace {

using Parameters = std::vector<std::pair<std::string, std::string>>;
constexpr std::size_t npos = std::string_view::npos;

bool wsp(char c) {
  return c == ' ' || c == '\t';
}
bool blank(char c) {
  return wsp(c) || c == '\r' || c == '\n';
}
char upper_char(char c) {
  return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c;
}

std::string upper(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), upper_char);
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return upper_char(x) == upper_char(y); });
}

// A field value as one line: line ends of folding removed, leading and trailing white space trimmed.
std::string unfold(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c != '\r' && c != '\n') out += c;
  }
  const std::size_t first = out.find_first_not_of(" \t");
  if (first == std::string::npos) return {};
  return out.substr(first, out.find_last_not_of(" \t") + 1 - first);
}

std::string nstring(const std::optional<std::string_view>& value) {
  return value ? imap_string(unfold(*value)) : "NIL";
}

std::size_t count_lines(std::string_view body) {
  const auto ends = static_cast<std::size_t>(std::count(body.begin(), body.end(), '\n'));
  return ends + (!body.empty() && body.back() != '\n' ? 1 : 0);
}

// The header section, up to and including the first empty line, and the body after it. Without an empty
// line, everything is header.
std::pair<std::string_view, std::string_view> split_header(std::string_view text) {
  std::size_t line = 0;
  while (line < text.size()) {
    if (text[line] == '\n') return {text.substr(0, line + 1), text.substr(line + 1)};
    if (text.substr(line, 2) == "\r\n") return {text.substr(0, line + 2), text.substr(line + 2)};
    const std::size_t end = text.find('\n', line);
    if (end == npos) break;
    line = end + 1;
  }
  return {text, text.substr(text.size())};
}

// Where a comment that opens at `open` ends: after its matching ')', nested comments and quoted pairs
// included, or at the end of the text.
std::size_t after_comment(std::string_view text, std::size_t open) {
  int depth = 0;
  std::size_t at = open;
  while (at < text.size()) {
    const char c = text[at++];
    if (c == '\\') {
      ++at;
    } else if (c == '(') {
      ++depth;
    } else if (c == ')' && --depth == 0) {
      break;
    }
  }
  return std::min(at, text.size());
}

// Calls visit(name, raw value) for each field of a header, continuation lines included in the value; stops
// when visit returns false. Lines that are not fields (no colon, or a continuation with nothing to continue)
// are skipped.
template <typename Visit>
void for_each_field(std::string_view header, Visit visit) {
  std::size_t position = 0;
  while (position < header.size()) {
    std::size_t end = position;
    for (;;) {
      const std::size_t newline = header.find('\n', end);
      if (newline == npos) {
        end = header.size();
        break;
      }
      end = newline + 1;
      if (end >= header.size() || !wsp(header[end])) break;
    }
    const std::string_view field = header.substr(position, end - position);
    position = end;
    const std::size_t colon = field.find(':');
    if (colon == npos || wsp(field[0])) continue;
    std::string_view name = field.substr(0, colon);
    while (!name.empty() && wsp(name.back())) name.remove_suffix(1);
    if (name.empty() || name.find('\n') != npos) continue;
    if (!visit(name, field.substr(colon + 1))) return;
  }
}

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
  explicit MimeTokens(std::string_view raw) : text_(unfold(raw)) {}

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

std::string parameter_list(Parameters parameters, bool text) {
  const bool has_charset = std::any_of(parameters.begin(), parameters.end(),
                                       [](const auto& parameter) { return parameter.first == "CHARSET"; });
  if (text && !has_charset) parameters.insert(parameters.begin(), {"CHARSET", "US-ASCII"});
  if (parameters.empty()) return "NIL";
  std::string out = "(";
  for (const auto& [name, value] : parameters) {
    if (out.size() > 1) out += ' ';
    out += imap_string(name) + ' ' + imap_string(value);
  }
  return out + ')';
}

// RFC 5322 section 3.4 addresses, leniently: a field value as words (atoms, which keep their dots, and quoted
// strings), domain literals and the specials that shape an address list; comments dropped.
struct AddressToken {
  char special = 0;  // one of <>:;@, or 0 for a word
  std::string text;  // a quoted string's content, unescaped
  std::string raw;   // as written
};

std::vector<AddressToken> address_tokens(std::string_view value) {
  std::vector<AddressToken> tokens;
  std::size_t i = 0;
  while (i < value.size()) {
    const char c = value[i];
    if (blank(c)) {
      ++i;
    } else if (c == '(') {
      i = after_comment(value, i);
    } else if (c == '"') {
      std::size_t j = i + 1;
      std::string text;
      while (j < value.size() && value[j] != '"') {
        if (value[j] == '\\' && j + 1 < value.size()) ++j;
        if (value[j] != '\r' && value[j] != '\n') text += value[j];
        ++j;
      }
      j = std::min(j + 1, value.size());
      tokens.push_back({0, std::move(text), std::string(value.substr(i, j - i))});
      i = j;
    } else if (std::string_view("<>:;@,").find(c) != npos) {
      tokens.push_back({c, std::string(1, c), std::string(1, c)});
      ++i;
    } else {
      std::size_t j = i + 1;
      if (c == '[') {
        j = std::min(value.find(']', i), value.size() - 1) + 1;
      } else {
        while (j < value.size() && !blank(value[j]) && std::string_view("()<>:;@,\"[").find(value[j]) == npos) ++j;
      }
      std::string word(value.substr(i, j - i));
      tokens.push_back({0, word, word});
      i = j;
    }
  }
  return tokens;
}

struct Address {
  std::optional<std::string> name, route, mailbox, host;
};

class AddressParser {
 public:
  explicit AddressParser(std::string_view value) : tokens_(address_tokens(value)) {}

  std::vector<Address> parse() {
    list(false);
    return std::move(out_);
  }

 private:
  bool at(char special) const { return position_ < tokens_.size() && tokens_[position_].special == special; }
  bool at_word() const { return position_ < tokens_.size() && tokens_[position_].special == 0; }
  std::vector<const AddressToken*> words() {
    std::vector<const AddressToken*> out;
    while (at_word()) out.push_back(&tokens_[position_++]);
    return out;
  }
  static std::string join(const std::vector<const AddressToken*>& words, bool raw) {
    std::string out;
    for (const AddressToken* word : words) {
      if (!raw && !out.empty()) out += ' ';
      out += raw ? word->raw : word->text;
    }
    return out;
  }
  std::string raw_words() {
    std::string out;
    while (at_word()) out += tokens_[position_++].raw;
    return out;
  }

  void list(bool in_group) {
    while (position_ < tokens_.size()) {
      if (at(',')) {
        ++position_;
      } else if (at(';')) {
        if (in_group) return;
        ++position_;
      } else {
        address(in_group);
      }
    }
  }
  void address(bool in_group) {
    const std::size_t begin = position_;
    const auto phrase = words();
    if (at('<')) {
      ++position_;
      angle_address(phrase);
    } else if (at(':') && !in_group) {
      ++position_;
      out_.push_back({std::nullopt, std::nullopt, join(phrase, false), std::nullopt});
      list(true);
      if (at(';')) ++position_;
      out_.push_back({});
    } else if (at('@')) {
      ++position_;
      out_.push_back({std::nullopt, std::nullopt, join(phrase, true), raw_words()});
    } else if (!phrase.empty()) {
      out_.push_back({std::nullopt, std::nullopt, join(phrase, true), ""});
    }
    if (position_ == begin) ++position_;  // a stray '>', '@' or ':'
  }
  // After '<': [obs-route ":"] local-part ["@" domain] ">".
  void angle_address(const std::vector<const AddressToken*>& phrase) {
    Address address;
    if (!phrase.empty()) address.name = join(phrase, false);
    if (at('@')) {
      std::string route;
      const std::size_t begin = position_;
      while (position_ < tokens_.size() && !at(':') && !at('>')) route += tokens_[position_++].raw;
      if (at(':')) {
        ++position_;
        address.route = route;
      } else {
        position_ = begin;
      }
    }
    address.mailbox = raw_words();
    address.host = "";
    if (at('@')) {
      ++position_;
      address.host = raw_words();
    }
    while (position_ < tokens_.size() && !at('>') && !at(',') && !at(';')) ++position_;
    if (at('>')) ++position_;
    out_.push_back(std::move(address));
  }

  std::vector<AddressToken> tokens_;
  std::size_t position_ = 0;
  std::vector<Address> out_;
};

std::string address_list(const std::optional<std::string_view>& value) {
  if (!value) return "NIL";
  const std::vector<Address> addresses = AddressParser(unfold(*value)).parse();
  if (addresses.empty()) return "NIL";
  auto field = [](const std::optional<std::string>& text) { return text ? imap_string(*text) : "NIL"; };
  std::string out = "(";
  for (const Address& address : addresses) {
    out += fmt::format("({} {} {} {})", field(address.name), field(address.route), field(address.mailbox),
                       field(address.host));
  }
  return out + ')';
}

std::string envelope_of(std::string_view header) {
  static constexpr std::string_view kFields[] = {"Date", "Subject", "From", "Sender",      "Reply-To",
                                                 "To",   "Cc",      "Bcc",  "In-Reply-To", "Message-ID"};
  std::optional<std::string_view> values[std::size(kFields)];
  for_each_field(header, [&](std::string_view name, std::string_view value) {
    for (std::size_t i = 0; i < std::size(kFields); ++i) {
      if (!values[i] && iequals(name, kFields[i])) values[i] = value;
    }
    return true;
  });
  const std::string from = address_list(values[2]);
  std::string sender = address_list(values[3]);
  std::string reply_to = address_list(values[4]);
  if (sender == "NIL") sender = from;
  if (reply_to == "NIL") reply_to = from;
  return fmt::format("({} {} {} {} {} {} {} {} {} {})", nstring(values[0]), nstring(values[1]), from, sender, reply_to,
                     address_list(values[5]), address_list(values[6]), address_list(values[7]), nstring(values[8]),
                     nstring(values[9]));
}

}  // namespace

struct MimeMessage::Entity {
  std::string_view header;  // blank line included
  std::string_view body;
  std::string type = "TEXT";
  std::string subtype = "PLAIN";
  Parameters parameters;
  std::optional<std::string_view> encoding, id, description, disposition, language, location;  // raw values
  std::vector<std::uint32_t> children;  // a multipart's parts, or a message/rfc822's encapsulated message
  bool message = false;                 // the whole message or an encapsulated one: its header is RFC 5322

  bool multipart() const { return type == "MULTIPART"; }
  bool rfc822() const { return type == "MESSAGE" && subtype == "RFC822"; }
};

MimeMessage::MimeMessage(std::string_view text) : text_(text) {
  parse(text, true, false, 0);
}
MimeMessage::~MimeMessage() = default;
MimeMessage::MimeMessage(MimeMessage&&) noexcept = default;
MimeMessage& MimeMessage::operator=(MimeMessage&&) noexcept = default;

std::uint32_t MimeMessage::parse(std::string_view text, bool message, bool digest_part, int depth) {
  const auto index = static_cast<std::uint32_t>(entities_.size());
  Entity entity;
  std::tie(entity.header, entity.body) = split_header(text);
  entity.message = message;
  if (digest_part) {
    entity.type = "MESSAGE";
    entity.subtype = "RFC822";
  }
  std::optional<std::string_view> content_type;
  for_each_field(entity.header, [&](std::string_view name, std::string_view value) {
    if (name.size() <= 8 || !iequals(name.substr(0, 8), "Content-")) return true;
    const std::pair<std::string_view, std::optional<std::string_view>*> fields[] = {
        {"Type", &content_type},
        {"Transfer-Encoding", &entity.encoding},
        {"ID", &entity.id},
        {"Description", &entity.description},
        {"Disposition", &entity.disposition},
        {"Language", &entity.language},
        {"Location", &entity.location}};
    for (const auto& [suffix, slot] : fields) {
      if (!*slot && iequals(name.substr(8), suffix)) *slot = value;
    }
    return true;
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

std::string MimeMessage::envelope() const {
  return envelope_of(entities_[0].header);
}

std::string MimeMessage::body_structure(bool extensible) const {
  std::string out;
  write_body(out, 0, extensible);
  return out;
}

void MimeMessage::write_body(std::string& out, std::uint32_t index, bool extensible) const {
  const Entity& entity = entities_[index];
  auto extension = [&entity]() {
    std::string disposition = "NIL";
    if (entity.disposition) {
      MimeTokens tokens(*entity.disposition);
      const std::string type = tokens.token();
      if (!type.empty()) {
        disposition = fmt::format("({} {})", imap_string(upper(type)), parameter_list(tokens.parameters(), false));
      }
    }
    std::vector<std::string> languages;
    if (entity.language) {
      const std::string value = unfold(*entity.language);
      std::size_t start = 0;
      while (start <= value.size()) {
        const std::size_t comma = std::min(value.find(',', start), value.size());
        std::string tag = unfold(std::string_view(value).substr(start, comma - start));
        if (!tag.empty()) languages.push_back(imap_string(tag));
        start = comma + 1;
      }
    }
    std::string language = languages.size() == 1 ? languages[0] : "NIL";
    if (languages.size() > 1) {
      language = "(";
      for (const std::string& tag : languages) language += (language.size() > 1 ? " " : "") + tag;
      language += ')';
    }
    return fmt::format("{} {} {}", disposition, language, nstring(entity.location));
  };

  out += '(';
  if (entity.multipart()) {
    if (entity.children.empty()) out += R"(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 0 0))";
    for (std::uint32_t child : entity.children) write_body(out, child, extensible);
    out += ' ' + imap_string(entity.subtype);
    if (extensible) out += fmt::format(" {} {}", parameter_list(entity.parameters, false), extension());
    out += ')';
    return;
  }
  const bool text = entity.type == "TEXT";
  std::string encoding = entity.encoding ? upper(MimeTokens(*entity.encoding).token()) : "";
  out += fmt::format("{} {} {} {} {} {} {}", imap_string(entity.type), imap_string(entity.subtype),
                     parameter_list(entity.parameters, text), nstring(entity.id), nstring(entity.description),
                     imap_string(encoding.empty() ? "7BIT" : encoding), entity.body.size());
  if (text) out += fmt::format(" {}", count_lines(entity.body));
  if (entity.rfc822() && !entity.children.empty()) {
    out += ' ' + envelope_of(entities_[entity.children[0]].header) + ' ';
    write_body(out, entity.children[0], extensible);
    out += fmt::format(" {}", count_lines(entity.body));
  }
  if (extensible) out += " NIL " + extension();
  out += ')';
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
      MimeTokens tokens(*entity.disposition);
      leaf.disposition = upper(tokens.token());
      const std::string filename = parameter(tokens.parameters(), "FILENAME");
      if (!filename.empty()) leaf.name = filename;
    }
    found.push_back(std::move(leaf));
  }
  return found;
}

std::pair<std::string_view, std::string_view> MimeMessage::split(std::string_view text) {
  return split_header(text);
}

std::optional<std::string> MimeMessage::decode(std::string_view encoding, std::string_view body) {
  const std::string name = upper(MimeTokens(encoding).token());
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

std::optional<std::string> header_field(std::string_view message, std::string_view name) {
  std::optional<std::string> found;
  for_each_field(split_header(message).first, [&](std::string_view field, std::string_view value) {
    if (iequals(field, name)) found = unfold(value);
    return !found;
  });
  return found;
}

std::string first_mailbox(std::string_view addresses) {
  for (const Address& address : AddressParser(unfold(addresses)).parse()) {
    // A group's opening and closing entries have no host; its members do.
    if (address.host && address.mailbox) return *address.mailbox;
  }
  return {};
}

}  // namespace tern::imap
