#include <arpa/nameser.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "dns/resolver.hpp"

using tern::dns::Resolver;
using Status = tern::sdk::DnsAnswer::Status;

namespace {

// A response in wire format: header, one question, and the answers given (each already encoded).
std::vector<unsigned char> response(int rcode, const std::vector<std::vector<unsigned char>>& answers) {
  std::vector<unsigned char> out{0x12, 0x34, 0x81, static_cast<unsigned char>(0x80 | rcode),
                                 0,    1,    0,    static_cast<unsigned char>(answers.size()),
                                 0,    0,    0,    0};
  const unsigned char question[] = {7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 4, 't', 'e', 's', 't', 0, 0, 15, 0, 1};
  // push_back rather than insert: g++ 12 misreads the bounds of an insert here (-Warray-bounds).
  for (unsigned char c : question) out.push_back(c);
  for (const auto& answer : answers) {
    for (unsigned char c : answer) out.push_back(c);
  }
  return out;
}

// An answer whose owner is the question's name (a pointer to offset 12).
std::vector<unsigned char> record(int type, std::uint32_t ttl, const std::vector<unsigned char>& data) {
  std::vector<unsigned char> out{0xc0,
                                 12,
                                 0,
                                 static_cast<unsigned char>(type),
                                 0,
                                 1,
                                 static_cast<unsigned char>(ttl >> 24),
                                 static_cast<unsigned char>(ttl >> 16),
                                 static_cast<unsigned char>(ttl >> 8),
                                 static_cast<unsigned char>(ttl),
                                 0,
                                 static_cast<unsigned char>(data.size())};
  for (unsigned char c : data) out.push_back(c);
  return out;
}

}  // namespace

TEST_CASE("MX answers are read with their preferences, names lower-cased, and the smallest TTL") {
  // 10 mx1.example.test (a label, then a pointer to "example.test"), 0 "." (a null MX)
  const auto wire =
      response(0, {record(ns_t_mx, 300, {0, 10, 3, 'M', 'X', '1', 0xc0, 12}), record(ns_t_mx, 120, {0, 0, 0})});
  std::uint32_t ttl = 0;
  const tern::sdk::DnsAnswer answer = Resolver::parse(wire.data(), static_cast<int>(wire.size()), ns_t_mx, ttl);
  REQUIRE(answer.status == Status::ok);
  REQUIRE(answer.records.size() == 2);
  CHECK(answer.records[0].preference == 10);
  CHECK(answer.records[0].value == "mx1.example.test");
  CHECK(answer.records[1].preference == 0);
  CHECK(answer.records[1].value.empty());
  CHECK(ttl == 120);
}

TEST_CASE("A and AAAA answers become address text; NXDOMAIN and empty answers are told apart") {
  std::uint32_t ttl = 0;
  const auto a = response(0, {record(ns_t_a, 60, {127, 0, 0, 2})});
  const tern::sdk::DnsAnswer v4 = Resolver::parse(a.data(), static_cast<int>(a.size()), ns_t_a, ttl);
  REQUIRE(v4.records.size() == 1);
  CHECK(v4.records[0].value == "127.0.0.2");
  const auto aaaa = response(0, {record(ns_t_aaaa, 60, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})});
  CHECK(Resolver::parse(aaaa.data(), static_cast<int>(aaaa.size()), ns_t_aaaa, ttl).records.at(0).value == "::1");
  const auto missing = response(3, {});
  CHECK(Resolver::parse(missing.data(), static_cast<int>(missing.size()), ns_t_mx, ttl).status == Status::no_domain);
  const auto empty = response(0, {});
  CHECK(Resolver::parse(empty.data(), static_cast<int>(empty.size()), ns_t_mx, ttl).status == Status::no_data);
  const auto failed = response(2, {});
  CHECK(Resolver::parse(failed.data(), static_cast<int>(failed.size()), ns_t_mx, ttl).status == Status::failed);
}

TEST_CASE("A truncated or lying answer is refused or cut short, never read past its end") {
  std::uint32_t ttl = 0;
  auto wire = response(0, {record(ns_t_a, 60, {127, 0, 0, 2})});
  wire.resize(wire.size() - 2);
  CHECK(Resolver::parse(wire.data(), static_cast<int>(wire.size()), ns_t_a, ttl).records.empty());
  const unsigned char tiny[] = {1, 2, 3};
  CHECK(Resolver::parse(tiny, 3, ns_t_a, ttl).status == Status::failed);
}

TEST_CASE("TXT answers join their strings; PTR answers are names") {
  std::uint32_t ttl = 0;
  const auto txt = response(0, {record(ns_t_txt, 60, {5, 'v', '=', 's', 'p', 'f', 4, '1', ' ', '-', 'a'})});
  const auto text = Resolver::parse(txt.data(), static_cast<int>(txt.size()), ns_t_txt, ttl);
  REQUIRE(text.records.size() == 1);
  CHECK(text.records[0].value == "v=spf1 -a");
  // A string longer than its record is refused, not read past the record.
  const auto lying = response(0, {record(ns_t_txt, 60, {9, 'v', '='})});
  CHECK(Resolver::parse(lying.data(), static_cast<int>(lying.size()), ns_t_txt, ttl).records.empty());
  const auto ptr = response(0, {record(ns_t_ptr, 60, {4, 'H', 'o', 's', 't', 0xc0, 12})});
  CHECK(Resolver::parse(ptr.data(), static_cast<int>(ptr.size()), ns_t_ptr, ttl).records.at(0).value ==
        "host.example.test");
}
