#include <catch2/catch.hpp>

#include <random>

#include "imap_syntax.hpp"
#include "structure_cache.hpp"

using tern::imap::parse_command;
using tern::imap::parse_sequence_set;
using tern::imap::trailing_literal;
using tern::imap::Value;

TEST_CASE("Commands parse into tag, name and nested arguments") {
  std::string tag;
  auto command = parse_command("a1 FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From To)]<0.100>)\r\n", tag);
  REQUIRE(command);
  CHECK(command->tag == "a1");
  CHECK(command->name == "FETCH");
  REQUIRE(command->arguments.size() == 2);
  CHECK(command->arguments[0].text == "1:*");
  REQUIRE(command->arguments[1].kind == Value::Kind::list);
  REQUIRE(command->arguments[1].items.size() == 2);
  CHECK(command->arguments[1].items[1].text == "BODY.PEEK[HEADER.FIELDS (From To)]<0.100>");
}

TEST_CASE("UID commands keep both words, and strings may be quoted or literal") {
  std::string tag;
  auto command = parse_command("x uid store 4 +FLAGS (\\Seen)\r\n", tag);
  REQUIRE(command);
  CHECK(command->name == "UID STORE");
  auto login = parse_command("b LOGIN \"al\\\"ice\" {6}\r\nse cre\r\n", tag);
  REQUIRE(login);
  CHECK(login->arguments[0].text == "al\"ice");
  CHECK(login->arguments[1].kind == Value::Kind::string);
  CHECK(login->arguments[1].text == "se cre");
}

TEST_CASE("Malformed commands are refused with the tag kept when there is one") {
  std::string tag;
  CHECK_FALSE(parse_command("\r\n", tag));
  CHECK_FALSE(parse_command("a1\r\n", tag));
  CHECK(tag == "a1");
  CHECK_FALSE(parse_command("a2 LOGIN \"unterminated\r\n", tag));
  CHECK(tag == "a2");
  CHECK_FALSE(parse_command("a3 FETCH 1 (FLAGS\r\n", tag));
  CHECK_FALSE(parse_command("a4 LOGIN {10}\r\nshort\r\n", tag));
  CHECK_FALSE(parse_command("a5 NOOP  \r\n", tag));
}

TEST_CASE("Literal announcements are found at the end of a line") {
  CHECK(trailing_literal("a APPEND INBOX {310}\r\n") == std::pair<std::uint64_t, bool>{310, false});
  CHECK(trailing_literal("a LOGIN {5+}\r\n") == std::pair<std::uint64_t, bool>{5, true});
  CHECK_FALSE(trailing_literal("a NOOP\r\n"));
  CHECK_FALSE(trailing_literal("a X {x}\r\n"));
}

TEST_CASE("Sequence sets expand ranges in either order and '*'") {
  auto set = parse_sequence_set("1:3,9,12:*", 20);
  REQUIRE(set);
  CHECK(tern::imap::in_sequence_set(*set, 2));
  CHECK_FALSE(tern::imap::in_sequence_set(*set, 5));
  CHECK(tern::imap::in_sequence_set(*set, 9));
  CHECK(tern::imap::in_sequence_set(*set, 20));
  auto reversed = parse_sequence_set("*:4", 6);
  REQUIRE(reversed);
  CHECK(tern::imap::in_sequence_set(*reversed, 5));
  CHECK_FALSE(parse_sequence_set("0", 5));
  CHECK_FALSE(parse_sequence_set("1,", 5));
  CHECK_FALSE(parse_sequence_set("a:b", 5));
}

TEST_CASE("Strings go out quoted, or as literals when they must") {
  CHECK(tern::imap::imap_string("Sent") == "\"Sent\"");
  CHECK(tern::imap::imap_string("a\"b\\") == "\"a\\\"b\\\\\"");
  CHECK(tern::imap::imap_string("two\r\nlines") == "{10}\r\ntwo\r\nlines");
}

TEST_CASE("The structure cache returns what was put in and forgets the least recently used first") {
  tern::imap::StructureCache cache(400);
  cache.insert("a", {"envelope-a", "body-a", "structure-a"});
  cache.insert("b", {"envelope-b", "body-b", "structure-b"});
  REQUIRE(cache.find("a"));
  CHECK(cache.find("a")->bodystructure == "structure-a");
  CHECK_FALSE(cache.find(""));
  for (int i = 0; i < 5; ++i) cache.insert("filler" + std::to_string(i), {"e", "b", "s"});
  cache.find("a");
  cache.insert("last", {"e", "b", "s"});
  CHECK_FALSE(cache.find("b"));
}

TEST_CASE("Random command lines never crash the parser, and what parses keeps its tag") {
  std::mt19937 random(20261122);
  const std::string alphabet = "aA1 *:,()[]<>{}+\"\\%\r\n.\x80\xff~";
  for (int round = 0; round < 20000; ++round) {
    std::string line = "t" + std::to_string(round) + " ";
    const int length = static_cast<int>(random() % 60);
    for (int i = 0; i < length; ++i) line += alphabet[random() % alphabet.size()];
    line += "\r\n";
    std::string tag;
    auto command = parse_command(line, tag);
    if (command) CHECK(command->tag == "t" + std::to_string(round));
    parse_sequence_set(line.substr(0, static_cast<std::size_t>(random() % line.size())), 1000);
    trailing_literal(line);
  }
}

TEST_CASE("Mailbox names go between modified UTF-7 and UTF-8 both ways") {
  using tern::imap::utf7_to_utf8;
  using tern::imap::utf8_to_utf7;
  const std::pair<const char*, const char*> pairs[] = {
      {"INBOX", "INBOX"},
      {"Entw\xc3\xbcrfe", "Entw&APw-rfe"},
      {"\xe5\x8f\xb0\xe5\x8c\x97", "&U,BTFw-"},  // RFC 3501's example: Taipei
      {"Tom & Jerry", "Tom &- Jerry"},
      {"\xf0\x9f\x93\xac mail", "&2D3c7A- mail"},  // beyond the BMP: a surrogate pair
  };
  for (const auto& [utf8, utf7] : pairs) {
    CHECK(utf8_to_utf7(utf8) == utf7);
    CHECK(utf7_to_utf8(utf7) == std::string(utf8));
  }
  for (const char* bad : {"&", "&Jjo", "&AGE-", "&2D0-", "&U,BTF2-", "caf\xc3\xa9", "a&*-", "&AAA-", "&AH8-"}) {
    CHECK_FALSE(utf7_to_utf8(bad));
  }
}
