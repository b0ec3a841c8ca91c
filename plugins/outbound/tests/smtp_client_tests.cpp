#include <catch2/catch.hpp>

#include "smtp_client.hpp"

using tern::outbound::dot_stuffed;
using tern::outbound::xtext;

TEST_CASE("A message is dot-stuffed, its bare LFs made CRLF, and ended with CRLF.CRLF") {
  CHECK(dot_stuffed("a\r\n.b\r\n") == "a\r\n..b\r\n.\r\n");
  CHECK(dot_stuffed(".\r\n") == "..\r\n.\r\n");
  CHECK(dot_stuffed("a\nb") == "a\r\nb\r\n.\r\n");
  CHECK(dot_stuffed("") == ".\r\n");
}

TEST_CASE("ENVID and ORCPT travel as xtext") {
  CHECK(xtext("user+tag@example.org") == "user+2Btag@example.org");
  CHECK(xtext("a=b c") == "a+3Db+20c");
}
