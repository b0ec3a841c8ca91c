#include <catch2/catch.hpp>

#include "ip_address.hpp"

using tern::inet::Address;
using tern::inet::Network;

TEST_CASE("Addresses parse, map IPv4 out of IPv6 for clients, and compare by prefix") {
  const auto v4 = Address::parse("192.0.2.3");
  REQUIRE(v4);
  CHECK_FALSE(v4->v6);
  CHECK(v4->text() == "192.0.2.3");
  const auto mapped = Address::parse("::FFFF:192.0.2.3");
  REQUIRE(mapped);
  CHECK_FALSE(mapped->v6);
  CHECK(mapped->bytes == v4->bytes);
  CHECK(Address::parse("::ffff:192.0.2.3", false)->v6);
  CHECK_FALSE(Address::parse("192.0.2.300"));
  CHECK_FALSE(Address::parse("mail.example.org"));
  const auto network = Network::parse("192.0.2.0/24");
  REQUIRE(network);
  CHECK(network->contains(*v4));
  CHECK_FALSE(network->contains(*Address::parse("192.0.3.1")));
  CHECK_FALSE(network->contains(*Address::parse("2001:db8::1")));
  CHECK(Network::parse("2001:db8::/32")->contains(*Address::parse("2001:db8:ffff::1")));
  CHECK(Network::parse("::1")->bits == 128);
  CHECK(Network::parse("0.0.0.0/0")->contains(*v4));
  for (const char* bad : {"192.0.2.0/33", "2001:db8::/129", "192.0.2.0/", "192.0.2.0/x", "nonsense/8"}) {
    INFO(bad);
    CHECK_FALSE(Network::parse(bad));
  }
}

TEST_CASE("Addresses are written as the labels of reverse and block-list names") {
  const auto v4 = *Address::parse("192.0.2.3");
  CHECK(v4.dotted() == "192.0.2.3");
  CHECK(v4.reversed() == "3.2.0.192");
  CHECK(v4.reverse_name() == "3.2.0.192.in-addr.arpa");
  const auto v6 = *Address::parse("2001:db8::cb01");
  CHECK(v6.text() == "2001:db8::cb01");
  CHECK(v6.dotted() == "2.0.0.1.0.d.b.8.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.c.b.0.1");
  CHECK(v6.reverse_name() == "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
}
