#include "addresses.hpp"

#include <algorithm>

#include "rfc5322_lexer.hpp"
#include "tern/sdk/header.hpp"
#include "tern/sdk/text.hpp"

namespace tern::mime {
namespace {

constexpr std::size_t npos = std::string_view::npos;

// RFC 5322 section 3.4 addresses, leniently: a field value as words (atoms, which keep their dots, and quoted
// strings), domain literals and the specials that shape an address list; comments dropped.
struct AddressToken {
  char special = 0;  // one of <>:;@, or 0 for a word
  std::string text;  // a quoted string's content, unescaped
  std::string raw;   // as written
};

// A comment, by the token it comes before: a bare address's trailing comment is its display name.
struct Comment {
  std::size_t before;  // the index of the token after it
  std::string text;    // without its parentheses and surrounding blanks
};

std::vector<AddressToken> address_tokens(std::string_view value, std::vector<Comment>& comments) {
  std::vector<AddressToken> tokens;
  std::size_t i = 0;
  while (i < value.size()) {
    const char c = value[i];
    if (blank(c)) {
      ++i;
    } else if (c == '(') {
      const std::size_t end = after_comment(value, i);
      std::string_view text = value.substr(i + 1, end - i - 1);
      if (text.ends_with(')')) text.remove_suffix(1);
      while (!text.empty() && blank(text.front())) text.remove_prefix(1);
      while (!text.empty() && blank(text.back())) text.remove_suffix(1);
      comments.push_back({tokens.size(), std::string(text)});
      i = end;
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

class AddressParser {
 public:
  explicit AddressParser(std::string_view value) : tokens_(address_tokens(value, comments_)) {}

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
      std::string host = raw_words();
      out_.push_back({trailing_comment(), std::nullopt, join(phrase, true), std::move(host)});
    } else if (!phrase.empty()) {
      out_.push_back({trailing_comment(), std::nullopt, join(phrase, true), ""});
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

  // "user@example.org (Real Name)": the comment right after a bare address names it, as mail readers show
  // it. Comments inside the address (obsolete syntax) come before its last token and name nothing.
  std::optional<std::string> trailing_comment() const {
    for (const Comment& comment : comments_) {
      if (comment.before == position_ && !comment.text.empty()) return comment.text;
    }
    return std::nullopt;
  }

  std::vector<Comment> comments_;
  std::vector<AddressToken> tokens_;
  std::size_t position_ = 0;
  std::vector<Address> out_;
};

}  // namespace

std::vector<Address> parse_addresses(std::string_view value) {
  return AddressParser(sdk::unfold(value)).parse();
}

std::vector<std::string> address_specs(std::string_view value) {
  std::vector<std::string> found;
  for (const Address& address : parse_addresses(value)) {
    // A group's opening and closing entries have no domain; its members do.
    if (address.mailbox && address.host && !address.mailbox->empty() && !address.host->empty()) {
      found.push_back(sdk::lower_ascii(*address.mailbox + "@" + *address.host));
    }
  }
  return found;
}

std::string first_mailbox(std::string_view value) {
  for (const Address& address : parse_addresses(value)) {
    if (address.host && address.mailbox) return *address.mailbox;
  }
  return {};
}

}  // namespace tern::mime
