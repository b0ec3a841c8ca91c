// The SPF plugin's parts on their own: macros (RFC 7208 section 7.4's examples), record syntax, and the
// Received-SPF field. The evaluation as a whole is held against the RFC 7208 suite (rfc7208_suite_tests.cpp).
#include <catch2/catch.hpp>

#include "received_spf.hpp"
#include "spf_macro.hpp"
#include "spf_record.hpp"

namespace {

using tern::spf::expand;
using tern::spf::expand_domain;
using tern::spf::MacroValues;

MacroValues example(bool v6) {
  MacroValues values;
  values.sender = "strong-bad@email.example.com";
  values.local_part = "strong-bad";
  values.sender_domain = "email.example.com";
  values.domain = "email.example.com";
  values.ipv6 = v6;
  values.ip = v6 ? "2.0.0.1.0.d.b.8.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.c.b.0.1" : "192.0.2.3";
  values.ip_text = v6 ? "2001:db8::cb01" : "192.0.2.3";
  values.helo = "mx.example.org";
  return values;
}

}  // namespace

TEST_CASE("Macros expand as RFC 7208 section 7.4's examples say") {
  const MacroValues v4 = example(false);
  const std::vector<std::pair<const char*, const char*>> cases = {
      {"%{s}", "strong-bad@email.example.com"},
      {"%{o}", "email.example.com"},
      {"%{d}", "email.example.com"},
      {"%{d4}", "email.example.com"},
      {"%{d3}", "email.example.com"},
      {"%{d2}", "example.com"},
      {"%{d1}", "com"},
      {"%{dr}", "com.example.email"},
      {"%{d2r}", "example.email"},
      {"%{l}", "strong-bad"},
      {"%{l-}", "strong.bad"},
      {"%{lr}", "strong-bad"},
      {"%{lr-}", "bad.strong"},
      {"%{l1r-}", "strong"},
      {"%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"},
      {"%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"},
      {"%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"},
      {"%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com"},
      {"%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net"},
  };
  for (const auto& [macro, expanded] : cases) {
    INFO(macro);
    CHECK(expand_domain(macro, v4) == std::optional<std::string>(expanded));
  }
  CHECK(expand_domain("%{ir}.%{v}._spf.%{d2}", example(true)) ==
        std::optional<std::string>(
            "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com"));
  // Upper-case letters escape their value as a URL does; %%, %_ and %- stand for "%", " " and "%20".
  CHECK(expand("%{S}", v4, true) == std::optional<std::string>("strong-bad%40email.example.com"));
  CHECK(expand("100%% %_%-", v4, true) == std::optional<std::string>("100%  %20"));
  // c, r and t belong to explanations only; an unknown letter, a bare % or a zero count is no macro at all.
  CHECK(expand("%{c} via %{r}", v4, true) == std::optional<std::string>("192.0.2.3 via unknown"));
  CHECK_FALSE(expand_domain("%{c}.example.com", v4));
  CHECK_FALSE(expand_domain("%{x}.example.com", v4));
  CHECK_FALSE(expand_domain("50%.example.com", v4));
  CHECK_FALSE(expand_domain("%{d0}.example.com", v4));
  // An expansion past 253 characters loses labels on the left.
  MacroValues long_sender = v4;
  long_sender.local_part = std::string(200, 'a') + "." + std::string(60, 'b');
  CHECK(expand_domain("%{l}.example.com", long_sender) ==
        std::optional<std::string>(std::string(60, 'b') + ".example.com"));
}

TEST_CASE("A record with any syntax error is refused whole, naming the term") {
  std::string problem;
  const auto record = tern::spf::parse_record(
      "v=spf1 +a/24//64 -mx:%{d2}.example.org ~ip4:192.0.2.0/24 "
      "?ip6:2001:db8::/32 ptr include:_spf.example.net "
      "exists:%{ir}.x.example.com redirect=other.example exp=why.%{d} x-y=z -all",
      problem);
  REQUIRE(record);
  REQUIRE(record->mechanisms.size() == 8);
  CHECK(record->mechanisms[0].cidr4 == 24);
  CHECK(record->mechanisms[0].cidr6 == 64);
  CHECK(record->mechanisms[1].qualifier == '-');
  CHECK(record->mechanisms[1].domain_spec == "%{d2}.example.org");
  CHECK(record->redirect == "other.example");
  CHECK(record->explanation == "why.%{d}");
  for (const char* bad :
       {"v=spf1 ip4:192.0.2.0/33", "v=spf1 ip4:192.0.2.0/024", "v=spf1 a:example.123", "v=spf1 include", "v=spf1 all:x",
        "v=spf1 foo:bar", "v=spf1 redirect=a.example redirect=b.example", "v=spf1 a:%{c}.example.com", "v=spf1 -all\t",
        "v=spf1 x-y=%{q}"}) {
    INFO(bad);
    CHECK_FALSE(tern::spf::parse_record(bad, problem));
    CHECK_FALSE(problem.empty());
  }
  CHECK(tern::spf::is_spf_record("V=SPF1 -all"));
  CHECK(tern::spf::is_spf_record("v=spf1"));
  CHECK_FALSE(tern::spf::is_spf_record("v=spf10 -all"));
}

TEST_CASE("Received-SPF says the result, in words and as key-value pairs") {
  tern::spf::Query query;
  query.ip = "192.0.2.1";
  query.sender = "alice@example.org";
  query.helo = "mail.example.org";
  query.receiver = "mx.tern.test";
  tern::spf::Outcome outcome;
  outcome.result = tern::spf::Result::pass;
  outcome.identity = "alice@example.org";
  outcome.mechanism = "ip4:192.0.2.0/24";
  CHECK(tern::spf::received_spf(outcome, query) ==
        "pass (mx.tern.test: domain of alice@example.org designates 192.0.2.1 as permitted sender) "
        "client-ip=192.0.2.1; envelope-from=\"alice@example.org\"; helo=mail.example.org; receiver=mx.tern.test; "
        "identity=mailfrom; mechanism=\"ip4:192.0.2.0/24\";");
  query.sender.clear();
  query.helo = "[192.0.2.1]";
  outcome.result = tern::spf::Result::permerror;
  outcome.identity = "postmaster@[192.0.2.1]";
  outcome.mechanism.clear();
  outcome.problem = "invalid term: a:(x)";
  CHECK(tern::spf::received_spf(outcome, query) ==
        "permerror (mx.tern.test: error in SPF record of domain of postmaster@[192.0.2.1]) client-ip=192.0.2.1; "
        "envelope-from=\"postmaster@[192.0.2.1]\"; helo=\"[192.0.2.1]\"; receiver=mx.tern.test; identity=helo; "
        "problem=\"invalid term: a:(x)\";");
}
