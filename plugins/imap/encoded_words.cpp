#include "encoded_words.hpp"

#include <iconv.h>

#include <optional>
#include <utility>

#include "tern/sdk/base64.hpp"
#include "tern/sdk/text.hpp"

namespace tern::imap {
namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// RFC 2047 section 4.2: "_" is a space, "=XX" an octet in hex, anything else itself.
std::optional<std::string> decode_q(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '_') {
      out += ' ';
    } else if (text[i] == '=') {
      if (i + 2 >= text.size()) return std::nullopt;
      const int high = hex_digit(text[i + 1]);
      const int low = hex_digit(text[i + 2]);
      if (high < 0 || low < 0) return std::nullopt;
      out += static_cast<char>(high * 16 + low);
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

// Senders often leave out the base64 padding; the strict decoder wants it.
std::optional<std::string> decode_b(std::string_view text) {
  std::string padded(text);
  padded.append((4 - padded.size() % 4) % 4, '=');
  return sdk::base64_decode(padded);
}

std::optional<std::string> to_utf8(const std::string& octets, std::string charset) {
  // RFC 2231 section 5: a language may follow the charset, after '*'.
  charset = sdk::lower_ascii(charset.substr(0, charset.find('*')));
  if (charset == "utf-8" || charset == "us-ascii") return octets;
  iconv_t converter = ::iconv_open("UTF-8", charset.c_str());
  if (converter == reinterpret_cast<iconv_t>(-1)) return std::nullopt;
  std::string out(octets.size() * 4 + 16, '\0');
  char* in = const_cast<char*>(octets.data());
  std::size_t in_left = octets.size();
  char* written = out.data();
  std::size_t out_left = out.size();
  // Four UTF-8 octets per input octet is enough for every charset iconv knows, so one call converts all.
  const std::size_t result = ::iconv(converter, &in, &in_left, &written, &out_left);
  ::iconv_close(converter);
  if (result == static_cast<std::size_t>(-1) || in_left != 0) return std::nullopt;
  out.resize(out.size() - out_left);
  return out;
}

// The encoded-word "=?charset?encoding?text?=" that starts at `at`, decoded, and where it ends.
std::optional<std::pair<std::string, std::size_t>> encoded_word(std::string_view text, std::size_t at) {
  if (text.substr(at, 2) != "=?") return std::nullopt;
  const std::size_t charset_end = text.find('?', at + 2);
  if (charset_end == std::string_view::npos || charset_end == at + 2 || charset_end + 3 > text.size() ||
      text[charset_end + 2] != '?') {
    return std::nullopt;
  }
  const std::size_t payload = charset_end + 3;
  const std::size_t end = text.find("?=", payload);
  if (end == std::string_view::npos) return std::nullopt;
  const std::string_view encoded = text.substr(payload, end - payload);
  if (encoded.find_first_of(" \t\r\n") != std::string_view::npos) return std::nullopt;
  const char encoding = text[charset_end + 1];
  const std::optional<std::string> octets = encoding == 'B' || encoding == 'b'   ? decode_b(encoded)
                                            : encoding == 'Q' || encoding == 'q' ? decode_q(encoded)
                                                                                 : std::nullopt;
  if (!octets) return std::nullopt;
  std::optional<std::string> decoded = to_utf8(*octets, std::string(text.substr(at + 2, charset_end - at - 2)));
  if (!decoded) return std::nullopt;
  return std::pair{std::move(*decoded), end + 2};
}

}  // namespace

std::string decode_encoded_words(std::string_view text) {
  constexpr std::size_t kNoWord = std::string::npos;
  std::string out;
  std::size_t after_word = kNoWord;  // where the last encoded-word ended in `out`, while only space follows
  std::size_t i = 0;
  while (i < text.size()) {
    if (auto word = encoded_word(text, i)) {
      if (after_word != kNoWord) out.resize(after_word);
      out += word->first;
      after_word = out.size();
      i = word->second;
      continue;
    }
    const char c = text[i++];
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') after_word = kNoWord;
    out += c;
  }
  return out;
}

}  // namespace tern::imap
