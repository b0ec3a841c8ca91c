#include <catch2/catch.hpp>

#include "relay_networks.hpp"
#include "smtp_syntax.hpp"

using tern::smtp::parse_path_argument;
using tern::smtp::split_command;
using tern::smtp::valid_mailbox;

TEST_CASE("Commands split into an upper-cased verb and the rest") {
  auto [verb, rest] = split_command("mail FROM:<a@b.test> SIZE=10");
  CHECK(verb == "MAIL");
  CHECK(rest == "FROM:<a@b.test> SIZE=10");
  CHECK(split_command("QUIT").second.empty());
}

TEST_CASE("MAIL FROM takes a path, the null path and parameters") {
  auto path = parse_path_argument("FROM:<Alice@Example.test> SIZE=1000 BODY=8BITMIME", "FROM");
  REQUIRE(path);
  CHECK(path->address == "Alice@Example.test");
  REQUIRE(path->parameters.size() == 2);
  CHECK(path->parameters[0] == std::pair<std::string, std::string>{"SIZE", "1000"});
  CHECK(path->parameters[1].first == "BODY");

  auto null_path = parse_path_argument("from:<>", "FROM");
  REQUIRE(null_path);
  CHECK(null_path->address.empty());
  CHECK(parse_path_argument("FROM: <a@b.test>", "FROM"));
}

TEST_CASE("RCPT TO refuses the null path and broken syntax") {
  CHECK_FALSE(parse_path_argument("TO:<>", "TO"));
  CHECK_FALSE(parse_path_argument("TO:a@b.test", "TO"));
  CHECK_FALSE(parse_path_argument("TO:<a@b.test", "TO"));
  CHECK_FALSE(parse_path_argument("TO:<a@>", "TO"));
  CHECK_FALSE(parse_path_argument("TO:<@b.test>", "TO"));
  CHECK_FALSE(parse_path_argument("TO:<a b@c.test>", "TO"));
  CHECK_FALSE(parse_path_argument("TO:<a@b.test>junk", "TO"));
  CHECK_FALSE(parse_path_argument("FROM:<a@b.test>", "TO"));
}

TEST_CASE("A source route is dropped and the final address kept") {
  auto path = parse_path_argument("TO:<@relay.test,@other.test:user@remote.test>", "TO");
  REQUIRE(path);
  CHECK(path->address == "user@remote.test");
}

TEST_CASE("Quoted local parts may hold an @, and the domain is what follows the last @") {
  auto path = parse_path_argument("TO:<\"user@remote.test\"@local.test>", "TO");
  REQUIRE(path);
  CHECK(path->address == "\"user@remote.test\"@local.test");
  CHECK(valid_mailbox("user@[192.0.2.1]"));
  CHECK_FALSE(valid_mailbox("user@remote@local.test"));
  CHECK_FALSE(valid_mailbox("user..name@local.test"));
  CHECK(valid_mailbox("user%remote.test@local.test"));
}

TEST_CASE("xtext decodes +XX escapes and refuses what is not xtext") {
  using tern::smtp::decode_xtext;
  CHECK(decode_xtext("abc+2Bdef") == std::string("abc+def"));
  CHECK(decode_xtext("rfc822") == std::string("rfc822"));
  CHECK_FALSE(decode_xtext("a+2"));
  CHECK_FALSE(decode_xtext("a+zz"));
  CHECK_FALSE(decode_xtext("a=b"));
  CHECK_FALSE(decode_xtext("a b"));
}

TEST_CASE("DSN NOTIFY is NEVER or a list of SUCCESS, FAILURE and DELAY, each once") {
  using tern::smtp::parse_notify;
  CHECK(parse_notify("never") == std::string("NEVER"));
  CHECK(parse_notify("SUCCESS,FAILURE") == std::string("SUCCESS,FAILURE"));
  CHECK(parse_notify("delay") == std::string("DELAY"));
  CHECK_FALSE(parse_notify("NEVER,SUCCESS"));
  CHECK_FALSE(parse_notify("SUCCESS,SUCCESS"));
  CHECK_FALSE(parse_notify("SUCCESS,"));
  CHECK_FALSE(parse_notify("SOMETIMES"));
  CHECK_FALSE(parse_notify(""));
}

TEST_CASE("DSN ORCPT is an address type and an xtext address") {
  using tern::smtp::parse_orcpt;
  CHECK(parse_orcpt("rfc822;alice+40example.test") == std::string("rfc822;alice@example.test"));
  CHECK_FALSE(parse_orcpt("rfc822"));
  CHECK_FALSE(parse_orcpt(";alice@example.test"));
  CHECK_FALSE(parse_orcpt("rfc822;"));
}

TEST_CASE("Relay networks match IPv4 and IPv6 clients by prefix") {
  tern::smtp::RelayNetworks networks;
  CHECK(networks.add("192.0.2.0/24"));
  CHECK(networks.add("2001:db8::/32"));
  CHECK(networks.add("198.51.100.7"));
  CHECK(networks.add("10.0.0.0/9"));
  CHECK_FALSE(networks.add("192.0.2.0/33"));
  CHECK_FALSE(networks.add("not-a-network"));
  CHECK_FALSE(networks.add("192.0.2.0/"));
  CHECK(networks.contains("192.0.2.200"));
  CHECK(networks.contains("::ffff:192.0.2.1"));
  CHECK(networks.contains("2001:db8:1::5"));
  CHECK(networks.contains("198.51.100.7"));
  CHECK(networks.contains("10.127.255.255"));
  CHECK_FALSE(networks.contains("10.128.0.0"));
  CHECK_FALSE(networks.contains("198.51.100.8"));
  CHECK_FALSE(networks.contains("192.0.3.1"));
  CHECK_FALSE(networks.contains("2001:db9::1"));
}

namespace {

// Feeds `text` to a DataReader as the connection would, line by line; returns whether the message ended.
bool read_all(tern::smtp::DataReader& reader, std::string_view text) {
  while (!text.empty()) {
    std::size_t end = text.find('\n');
    end = end == std::string_view::npos ? text.size() : end + 1;
    if (reader.add(text.substr(0, end), false)) return true;
    text.remove_prefix(end);
  }
  return false;
}

}  // namespace

TEST_CASE("DATA ends only at CRLF.CRLF, with dots unstuffed") {
  tern::smtp::DataReader reader(1000);
  CHECK(read_all(reader, "Subject: x\r\n\r\n..leading dot\r\n.\r\n"));
  CHECK(reader.message() == "Subject: x\r\n\r\n.leading dot\r\n");
  CHECK(reader.problem().empty());
}

TEST_CASE("A bare LF or CR in DATA cannot end the message early, and refuses it") {
  for (const char* smuggled : {"a\n.\nMAIL FROM:<x@y>\r\n.\r\n", "a\r\n.\nb\r\n.\r\n", "a\r.\r\nb\r\n.\r\n"}) {
    tern::smtp::DataReader reader(1000);
    CHECK(read_all(reader, smuggled));
    CHECK(reader.problem().starts_with("550 5.6.0"));
  }
}

TEST_CASE("DATA over the size limit, or with an over-long line, is read to its end and refused") {
  tern::smtp::DataReader big(10);
  CHECK(read_all(big, "0123456789abc\r\n.\r\n"));
  CHECK(big.problem().starts_with("552 5.3.4"));
  CHECK(big.message().empty());
  tern::smtp::DataReader long_line(1000);
  CHECK_FALSE(long_line.add("\r\n", true));
  CHECK(long_line.add(".\r\n", false));
  CHECK(long_line.problem().starts_with("500 5.5.2"));
}
