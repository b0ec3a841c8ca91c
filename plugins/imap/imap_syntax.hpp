// IMAP command syntax (RFC 3501 section 9 / RFC 9051): values, commands with their literals assembled, and
// sequence sets. Pure functions, tested and fuzzed apart from any connection.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tern::imap {

// One argument: an atom (NIL included, and FETCH's BODY[...]<...> sections as one atom), a string (quoted or
// literal), or a parenthesized list.
struct Value {
  enum class Kind { atom, string, list };
  Kind kind = Kind::atom;
  std::string text;
  std::vector<Value> items;

  bool is_atom(std::string_view upper) const;  // case-insensitive
  // Atom or string, as the text a client meant (astring in RFC 3501).
  bool is_astring() const { return kind != Kind::list; }
};

struct Command {
  std::string tag;
  std::string name;  // upper-cased; "UID FETCH" and the like keep both words
  std::vector<Value> arguments;
};

// Parses a whole command: the line, with each literal's octets in place after its "{n}\r\n" (or "{n+}\r\n"),
// and the final CRLF. nullopt on a syntax error; `tag` then holds the tag when one could be read, so the error
// can be answered tagged.
std::optional<Command> parse_command(std::string_view text, std::string& tag);

// Whether `text` can be a command's tag: astring characters other than '+' (RFC 3501 section 9).
bool is_tag(std::string_view text);

// When `line` ends with a literal announcement "{n}\r\n" or "{n+}\r\n": its size and whether it is
// non-synchronizing (LITERAL+).
std::optional<std::pair<std::uint64_t, bool>> trailing_literal(std::string_view line);

// A sequence set such as "1:3,7,9:*": numbers, ranges in either order, '*' for the largest. `largest` is what
// '*' stands for. nullopt when malformed.
std::optional<std::vector<std::pair<std::uint32_t, std::uint32_t>>> parse_sequence_set(std::string_view text,
                                                                                       std::uint32_t largest);
bool in_sequence_set(const std::vector<std::pair<std::uint32_t, std::uint32_t>>& set, std::uint32_t number);
// Ascending numbers as a compact sequence set: "1:3,5,9:10" (ESEARCH ALL, VANISHED).
std::string compact_set(const std::vector<std::uint32_t>& numbers);

// A CONDSTORE modifier list, "(CHANGEDSINCE n)" or "(UNCHANGEDSINCE n)" with `name` the keyword: n. nullopt when it is
// not that one.
std::optional<std::uint64_t> modifier(const Value& list, std::string_view name);

// Whether a space-separated flag list ("\\Seen $Work") holds `flag`; flags compare case-insensitively.
bool has_flag(std::string_view flags, std::string_view flag);

// Mailbox names in IMAP4rev1's modified UTF-7 (RFC 3501 section 5.1.3), to and from the UTF-8 the store
// keeps (and IMAP4rev2 sends). Decoding gives nullopt for a malformed name: a bare '&' run, bad base64, a
// shift that encodes plain ASCII, or UTF-16 that is not whole characters. Encoding takes invalid UTF-8 byte
// by byte, as Latin-1.
std::optional<std::string> utf7_to_utf8(std::string_view text);
std::string utf8_to_utf7(std::string_view text);

// A string as IMAP sends it: quoted when it can be, a literal otherwise (CR, LF, NUL, 8-bit or very long).
std::string imap_string(std::string_view text);

}  // namespace tern::imap
