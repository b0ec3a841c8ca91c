// A message's RFC 5322 header and MIME structure (RFC 2045/2046), as IMAP shows them: ENVELOPE, BODY and
// BODYSTRUCTURE (RFC 3501 section 7.4.2) and the part numbers of FETCH BODY[<section>] (section 6.4.5). Pure
// functions of the text, tested apart from any store or connection.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tern::imap {

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
// Output conventions: type, subtype, parameter names, transfer encoding and disposition type upper-cased;
// everything else as written (encoded-words are not decoded), unfolded, quoted with imap_string() (a literal
// when 8-bit or long) and NIL when absent. Sizes are octets, lines count the line ends (plus a last,
// unterminated line).
class MimeMessage {
 public:
  static constexpr int kMaxDepth = 32;
  static constexpr std::size_t kMaxParts = 10'000;

  explicit MimeMessage(std::string_view text);
  explicit MimeMessage(const char* text) : MimeMessage(std::string_view(text)) {}
  // A temporary would die before the views into it: refused at compile time.
  explicit MimeMessage(std::string&&) = delete;
  ~MimeMessage();
  MimeMessage(MimeMessage&&) noexcept;
  MimeMessage& operator=(MimeMessage&&) noexcept;

  // ENVELOPE: ("date" "subject" (from) (sender) (reply-to) (to) (cc) (bcc) "in-reply-to" "message-id"), NIL
  // for an absent field or an empty address list; sender and reply-to default to from. Addresses as
  // ((name adl mailbox host) ...), a group as (NIL NIL "group" NIL) then its members then (NIL NIL NIL NIL).
  std::string envelope() const;

  // BODYSTRUCTURE (extensible) or BODY (not): for a text part the line count, for message/rfc822 the inner
  // envelope, structure and line count, for a multipart its parts then its subtype; BODYSTRUCTURE adds the
  // extension data (parameters or MD5 (always NIL), disposition, language, location).
  std::string body_structure(bool extensible) const;

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
  // What section("") gives as header and body, found without parsing the rest: the header (blank line
  // included) and what follows it.
  static std::pair<std::string_view, std::string_view> split(std::string_view text);

  // A body undone from its Content-Transfer-Encoding (RFC 2045 section 6): base64 and quoted-printable
  // decoded leniently (characters outside the alphabet skipped, a broken escape kept as written), 7bit, 8bit
  // and binary as they are. nullopt for an encoding this parser does not know.
  static std::optional<std::string> decode(std::string_view encoding, std::string_view body);

 private:
  struct Entity;
  std::uint32_t parse(std::string_view text, bool message, bool digest_part, int depth);
  void write_body(std::string& out, std::uint32_t index, bool extensible) const;

  std::string_view text_;
  std::vector<Entity> entities_;  // [0] is the message; a parent comes before its children
};

// The value of the first field named `name` (case-insensitive) in the header of a message (or of a header
// section alone), unfolded and trimmed; nullopt when there is none. Cheaper than a MimeMessage when only a
// field or two is wanted: the body is not parsed.
std::optional<std::string> header_field(std::string_view message, std::string_view name);

// The local part (IMAP's addr-mailbox) of the first address in an address-list field value, as ENVELOPE
// shows it; empty when the value holds no address.
std::string first_mailbox(std::string_view addresses);

}  // namespace tern::imap
