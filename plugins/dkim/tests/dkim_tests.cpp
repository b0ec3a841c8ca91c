// The dkim plugin's parts: canonicalization (RFC 6376 section 3.4.5's example), keys and their records, and
// the signature field. Whether the signatures verify is for real verifiers: tests/integration/test_dkim.py.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>

#include "canonical.hpp"
#include "keys.hpp"
#include "signer.hpp"

namespace {

using tern::dkim::Canon;

struct TempDir {
  TempDir() : path(std::filesystem::temp_directory_path() / ("tern-dkim-" + std::to_string(::getpid()))) {
    std::filesystem::remove_all(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::filesystem::path path;
};

// The value of tag `name` in a tag list.
std::string tag(const std::string& list, const std::string& name) {
  const std::size_t at = list.find(" " + name + "=");
  if (at == std::string::npos) return {};
  const std::size_t start = at + name.size() + 2;
  return list.substr(start, list.find(';', start) - start);
}

}  // namespace

TEST_CASE("Canonicalization follows RFC 6376's own example") {
  CHECK(tern::dkim::canonical_field("A: X\r\n", Canon::relaxed) == "a:X\r\n");
  CHECK(tern::dkim::canonical_field("B : Y\t\r\n\tZ  \r\n", Canon::relaxed) == "b:Y Z\r\n");
  CHECK(tern::dkim::canonical_field("B : Y\t\r\n\tZ  \r\n", Canon::simple) == "B : Y\t\r\n\tZ  \r\n");
  const std::string body = " C \r\nD \t E\r\n\r\n\r\n";
  CHECK(tern::dkim::canonical_body(body, Canon::relaxed) == " C\r\nD E\r\n");
  CHECK(tern::dkim::canonical_body(body, Canon::simple) == " C \r\nD \t E\r\n");
  // An empty body is one CRLF in simple and nothing in relaxed; a last line without CRLF gets one.
  CHECK(tern::dkim::canonical_body("", Canon::simple) == "\r\n");
  CHECK(tern::dkim::canonical_body("\r\n\r\n", Canon::relaxed).empty());
  CHECK(tern::dkim::canonical_body("end", Canon::relaxed) == "end\r\n");
}

TEST_CASE("Keys are kept per domain and selector, never overwritten, and published as DKIM1 records") {
  TempDir data;
  const auto rsa = tern::dkim::make_key(data.path, "example.test", "rsa1", tern::dkim::Algorithm::rsa);
  const auto ed = tern::dkim::make_key(data.path, "example.test", "ed1", tern::dkim::Algorithm::ed25519);
  CHECK_THROWS(tern::dkim::make_key(data.path, "example.test", "ed1", tern::dkim::Algorithm::ed25519));
  const auto mode = std::filesystem::status(data.path / "dkim" / "example.test" / "rsa1.pem").permissions();
  CHECK((mode & std::filesystem::perms::group_all) == std::filesystem::perms::none);
  CHECK((mode & std::filesystem::perms::others_all) == std::filesystem::perms::none);
  std::vector<std::string> problems;
  const auto keys = tern::dkim::read_keys(data.path, problems);
  REQUIRE(keys.size() == 2);
  CHECK(problems.empty());
  CHECK(keys[0].selector == "ed1");
  CHECK(keys[0].algorithm == tern::dkim::Algorithm::ed25519);
  CHECK(tern::dkim::dns_record(keys[1]) == tern::dkim::dns_record(rsa));
  // Ed25519: the raw 32-octet key, 44 characters of base64 (RFC 8463 section 4.2).
  const std::string ed_record = tern::dkim::dns_record(ed);
  CHECK(ed_record.rfind("v=DKIM1; k=ed25519; p=", 0) == 0);
  CHECK(ed_record.size() == std::string("v=DKIM1; k=ed25519; p=").size() + 44);
  // An RSA record is longer than one DNS string: the zone line splits it.
  const std::string line = tern::dkim::zone_line(rsa);
  CHECK(line.rfind("rsa1._domainkey.example.test. IN TXT ( \"v=DKIM1; k=rsa; p=", 0) == 0);
  CHECK(line.find("\" \"") != std::string::npos);
  std::filesystem::create_directories(data.path / "dkim" / "other.test");
  std::ofstream(data.path / "dkim" / "other.test" / "broken.pem") << "not a key\n";
  CHECK(tern::dkim::read_keys(data.path, problems).size() == 2);
  CHECK(problems.size() == 1);
}

TEST_CASE("A signature names its key, the fields it covers (From once more) and the body's hash") {
  TempDir data;
  const auto key = tern::dkim::make_key(data.path, "example.test", "ed1", tern::dkim::Algorithm::ed25519);
  const std::string message =
      "Received: by somewhere\r\nFrom: Alice <alice@example.test>\r\nTo: bob@example.org\r\nSubject: hi\r\n"
      "Subject: twice\r\nX-Other: not signed\r\n\r\nhello\r\n\r\n";
  const std::string value = tern::dkim::sign(message, key, 1700000000);
  CHECK(tag(value, "v") == "1");
  CHECK(tag(value, "a") == "ed25519-sha256");
  CHECK(tag(value, "c") == "relaxed/relaxed");
  CHECK(tag(value, "d") == "example.test");
  CHECK(tag(value, "s") == "ed1");
  CHECK(tag(value, "t") == "1700000000");
  CHECK(tag(value, "h") == "from:subject:subject:to:from");
  // SHA-256 of "hello\r\n", the relaxed body.
  CHECK(tag(value, "bh") == "zS7KNTV0HyeorkDDGwxB1AV6enuRKzO5rthkhdHIRnY=");
  // Ed25519 signatures are deterministic: 64 octets, 88 characters of base64.
  CHECK(value.substr(value.rfind("b=") + 2).size() == 88);
  CHECK(tern::dkim::sign(message, key, 1700000000) == value);
}
