// RFC 2047 encoded-words ("=?ISO-8859-1?Q?caf=E9?=") in unstructured header fields such as Subject, decoded
// to UTF-8: SORT and THREAD compare subjects as text (RFC 5256 section 2.1), not as their encodings. A pure
// function, tested apart from any store.
#pragma once

#include <string>
#include <string_view>

namespace tern::imap {

// The text with each encoded-word replaced by its UTF-8 text, and the white space between two adjacent
// encoded-words dropped (RFC 2047 section 6.2). A word in a charset iconv does not know, or that does not
// decode, stays as written; the rest of the text is copied unchanged.
std::string decode_encoded_words(std::string_view text);

}  // namespace tern::imap
