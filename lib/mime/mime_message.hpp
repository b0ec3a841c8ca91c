// A message's MIME structure (RFC 2045/2046): its entity tree, the part numbers of IMAP's FETCH BODY[<section>]
// (RFC 3501 section 6.4.5), its leaf parts and their transfer encodings undone. Pure functions of the text,
// tested apart from any store or connection; IMAP writes ENVELOPE and BODYSTRUCTURE from it, filters read
// parts through it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tern::mime {

// MIME parameters in order: names upper-cased, values as written (quotes undone).
using Parameters = std::vector<std::pair<std::string, std::string>>;

// A field value of the Content-Type or Content-Disposition kind: its leading token and its parameters.
struct TypedValue {
  std::string token;  // upper-cased: "TEXT", "ATTACHMENT", "BASE64"; empty when the value has none
  Parameters parameters;
};

// Reads a raw field value (folded, with comments) as RFC 2045 tokens; what cannot be read is skipped.
TypedValue parse_typed_value(std::string_view raw);

// A message parsed once: its header and MIME structure, kept as offsets (views) into the caller's text, which
// must outlive the object. Parsing never throws (beyond std::bad_alloc) and never reads outside the text.
//
// Malformed input still gives a structure: a header with no blank line is all header and no body; lone LF
// line ends count as line ends; header field names are matched case-insensitively and the first occurrence of
// a field wins; an invalid Content-Type, or a multipart without a boundary, is text/plain; a part that never
// meets its closing boundary runs to the end of its parent; preamble and epilogue are ignored; a multipart
// with no part is shown with one empty text/plain part. At most kMaxDepth levels of nesting and kMaxParts
// entities in all: a multipart or message/rfc822 that would go beyond is shown as application/octet-stream,
// and the parts of a multipart past the limit are dropped like an epilogue.
//
// Names as read: type, subtype, parameter names and the disposition and encoding tokens upper-cased;
// everything else as written (encoded-words are not decoded). Sizes are octets.
class MimeMessage {
 public:
  static constexpr int kMaxDepth = 32;
  static constexpr std::size_t kMaxParts = 10'000;

  explicit MimeMessage(std::string_view text);
  explicit MimeMessage(const char* text) : MimeMessage(std::string_view(text)) {}
  // A temporary would die before the views into it: refused at compile time.
  explicit MimeMessage(std::string&&) = delete;

  // One entity of the tree: the message, a part, or a message/rfc822 part's encapsulated message.
  struct Entity {
    std::string_view header;  // its header, blank line included
    std::string_view body;
    std::string type = "TEXT";
    std::string subtype = "PLAIN";
    Parameters parameters;  // of its Content-Type
    // The raw values of its other MIME fields, when present.
    std::optional<std::string_view> encoding, id, description, disposition, language, location;
    std::vector<std::uint32_t> children;  // a multipart's parts, or a message/rfc822's encapsulated message
    bool message = false;                 // the whole message or an encapsulated one: its header is RFC 5322

    bool multipart() const { return type == "MULTIPART"; }
    bool rfc822() const { return type == "MESSAGE" && subtype == "RFC822"; }
  };
  // The tree, as indexes into this list: [0] is the message, and a parent comes before its children.
  const std::vector<Entity>& entities() const { return entities_; }

  // What FETCH BODY[<section>] returns, for a part specifier `part` such as "", "1", "1.2" or "2.1.3" (the
  // caller handles HEADER, TEXT, MIME and HEADER.FIELDS). nullopt when there is no such part. Per RFC 3501
  // section 6.4.5: a non-multipart message (or encapsulated message) has only a part 1, its body; the parts
  // of a message/rfc822 part are those of the encapsulated message.
  struct Section {
    std::string_view text;    // BODY[<part>]: the whole message for "", else the part's body (for a
                              // message/rfc822 part, the encapsulated message)
    std::string_view header;  // BODY[<part>.HEADER]: the header of the message ("") or of the message/rfc822
                              // part's encapsulated message, blank line included; empty for other parts
    std::string_view body;    // BODY[<part>.TEXT]: what follows that header; empty for other parts
    std::string_view mime;    // BODY[<part>.MIME]: the part's own MIME header, blank line included (for part
                              // 1 of a non-multipart message, the message's header); empty for ""
    bool message = false;     // true when header and body apply (the whole message or a message/rfc822 part)
    // BINARY (RFC 3516): the part's Content-Transfer-Encoding as written ("" when absent), and whether the
    // part is a leaf (neither multipart nor message/rfc822), the only kind whose body is decoded.
    std::string_view encoding;
    bool leaf = false;
    // leaves() only, for filters: the part's type ("TEXT/PLAIN"), its file name (Content-Disposition's
    // filename, else Content-Type's name; "" when none), disposition type ("ATTACHMENT", "INLINE" or "") and
    // charset ("" when none). Names as written: encoded-words and RFC 2231 values are not decoded.
    std::string type;
    std::string name;
    std::string disposition;
    std::string charset;
  };
  std::optional<Section> section(std::string_view part) const;
  // Every leaf part (neither multipart nor message/rfc822), in order, as section() would give it: what SEARCH
  // BODY and TEXT look into once their transfer encodings are undone.
  std::vector<Section> leaves() const;
  // A body undone from its Content-Transfer-Encoding (RFC 2045 section 6): base64 and quoted-printable
  // decoded leniently (characters outside the alphabet skipped, a broken escape kept as written), 7bit, 8bit
  // and binary as they are. nullopt for an encoding this parser does not know.
  static std::optional<std::string> decode(std::string_view encoding, std::string_view body);

 private:
  std::uint32_t parse(std::string_view text, bool message, bool digest_part, int depth);

  std::string_view text_;
  std::vector<Entity> entities_;
};

}  // namespace tern::mime
