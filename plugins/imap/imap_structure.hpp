// What IMAP shows of a message's structure (RFC 3501 section 7.4.2), written from the MIME parser's tree.
//
// Output conventions: type, subtype, parameter names, transfer encoding and disposition type upper-cased;
// everything else as written (encoded-words are not decoded), unfolded, quoted with imap_string() (a literal
// when 8-bit or long) and NIL when absent. Sizes are octets, lines count the line ends (plus a last,
// unterminated line).
#pragma once

#include <string>

#include "mime_message.hpp"

namespace tern::imap {

// ENVELOPE: ("date" "subject" (from) (sender) (reply-to) (to) (cc) (bcc) "in-reply-to" "message-id"), NIL for an
// absent field or an empty address list; sender and reply-to default to from. Addresses as
// ((name adl mailbox host) ...), a group as (NIL NIL "group" NIL) then its members then (NIL NIL NIL NIL).
std::string envelope(const mime::MimeMessage& parsed);

// BODYSTRUCTURE (extensible) or BODY (not): for a text part the line count, for message/rfc822 the inner
// envelope, structure and line count, for a multipart its parts then its subtype; BODYSTRUCTURE adds the
// extension data (parameters or MD5 (always NIL), disposition, language, location).
std::string body_structure(const mime::MimeMessage& parsed, bool extensible);

}  // namespace tern::imap
