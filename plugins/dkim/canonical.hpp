// DKIM's canonicalization (RFC 6376 section 3.4): the form of header fields and body that a signature covers,
// "simple" (as written) or "relaxed" (white space folded, field names lower-cased).
#pragma once

#include <string>
#include <string_view>

namespace tern::dkim {

enum class Canon { simple, relaxed };

// One header field, from its name to its last line end (`text` of sdk::HeaderField), canonicalized; with its
// final CRLF, which a caller takes off for the signature's own field.
std::string canonical_field(std::string_view text, Canon canon);
// The body (after the empty line), canonicalized: trailing empty lines taken off, one CRLF at the end.
std::string canonical_body(std::string_view body, Canon canon);

}  // namespace tern::dkim
