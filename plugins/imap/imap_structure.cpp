// ENVELOPE, BODY and BODYSTRUCTURE (RFC 3501 section 7.4.2), written from a message the MIME parser read.
#include "imap_structure.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "addresses.hpp"
#include "imap_syntax.hpp"
#include "tern/sdk/header.hpp"

namespace tern::imap {
namespace {

std::string nstring(const std::optional<std::string_view>& value) {
  return value ? imap_string(sdk::unfold(*value)) : "NIL";
}

std::size_t count_lines(std::string_view body) {
  const auto ends = static_cast<std::size_t>(std::count(body.begin(), body.end(), '\n'));
  return ends + (!body.empty() && body.back() != '\n' ? 1 : 0);
}

std::string parameter_list(mime::Parameters parameters, bool text) {
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

std::string address_list(const std::optional<std::string_view>& value) {
  if (!value) return "NIL";
  const std::vector<mime::Address> addresses = mime::parse_addresses(*value);
  if (addresses.empty()) return "NIL";
  auto field = [](const std::optional<std::string>& text) { return text ? imap_string(*text) : "NIL"; };
  std::string out = "(";
  for (const mime::Address& address : addresses) {
    out += fmt::format("({} {} {} {})", field(address.name), field(address.route), field(address.mailbox),
                       field(address.host));
  }
  return out + ')';
}

std::string envelope_of(std::string_view header) {
  static constexpr std::string_view kFields[] = {"Date", "Subject", "From", "Sender",      "Reply-To",
                                                 "To",   "Cc",      "Bcc",  "In-Reply-To", "Message-ID"};
  std::optional<std::string_view> values[std::size(kFields)];
  sdk::visit_header_fields(header, [&](const sdk::HeaderField& field) {
    for (std::size_t i = 0; i < std::size(kFields); ++i) {
      if (!values[i] && sdk::same_ascii(field.name, kFields[i])) values[i] = field.raw;
    }
    return false;
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

void write_body(const mime::MimeMessage& parsed, std::string& out, std::uint32_t index, bool extensible) {
  const mime::MimeMessage::Entity& entity = parsed.entities()[index];
  auto extension = [&entity]() {
    std::string disposition = "NIL";
    if (entity.disposition) {
      const mime::TypedValue value = mime::parse_typed_value(*entity.disposition);
      if (!value.token.empty()) {
        disposition = fmt::format("({} {})", imap_string(value.token), parameter_list(value.parameters, false));
      }
    }
    std::vector<std::string> languages;
    if (entity.language) {
      const std::string value = sdk::unfold(*entity.language);
      std::size_t start = 0;
      while (start <= value.size()) {
        const std::size_t comma = std::min(value.find(',', start), value.size());
        std::string tag = sdk::unfold(std::string_view(value).substr(start, comma - start));
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
    for (std::uint32_t child : entity.children) write_body(parsed, out, child, extensible);
    out += ' ' + imap_string(entity.subtype);
    if (extensible) out += fmt::format(" {} {}", parameter_list(entity.parameters, false), extension());
    out += ')';
    return;
  }
  const bool text = entity.type == "TEXT";
  std::string encoding = entity.encoding ? mime::parse_typed_value(*entity.encoding).token : "";
  out += fmt::format("{} {} {} {} {} {} {}", imap_string(entity.type), imap_string(entity.subtype),
                     parameter_list(entity.parameters, text), nstring(entity.id), nstring(entity.description),
                     imap_string(encoding.empty() ? "7BIT" : encoding), entity.body.size());
  if (text) out += fmt::format(" {}", count_lines(entity.body));
  if (entity.rfc822() && !entity.children.empty()) {
    out += ' ' + envelope_of(parsed.entities()[entity.children[0]].header) + ' ';
    write_body(parsed, out, entity.children[0], extensible);
    out += fmt::format(" {}", count_lines(entity.body));
  }
  if (extensible) out += " NIL " + extension();
  out += ')';
}

}  // namespace

std::string envelope(const mime::MimeMessage& parsed) {
  return envelope_of(parsed.entities()[0].header);
}

std::string body_structure(const mime::MimeMessage& parsed, bool extensible) {
  std::string out;
  write_body(parsed, out, 0, extensible);
  return out;
}

}  // namespace tern::imap
