#include <unistd.h>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "config/server_config.hpp"

namespace {

using tern::config::ConfigInvalid;
using tern::config::load_config;

// A config file in a fresh temporary folder, removed at the end of the test.
struct ConfigFile {
  explicit ConfigFile(const std::string& text) {
    dir = std::filesystem::temp_directory_path() /
          ("tern-config-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::create_directories(dir);
    path = dir / "tern.toml";
    std::ofstream(path) << text;
  }
  ~ConfigFile() { std::filesystem::remove_all(dir); }
  std::filesystem::path dir;
  std::filesystem::path path;
  static inline int counter = 0;
};

std::vector<std::string> errors_of(const std::string& text) {
  ConfigFile file(text);
  try {
    load_config(file.path);
  } catch (const ConfigInvalid& invalid) {
    return invalid.errors();
  }
  return {};
}

const char* kIssueShape = R"(
[server]
hostname = "mx.example.test"
data_dir = "var"
[[listener]]
protocol = "smtp"          # smtp | submission | pop3 | imap
address  = "127.0.0.1:2525"
tls      = "none"          # none | starttls | implicit
[tls]
cert = "var/tls/cert.pem"
key  = "var/tls/key.pem"
[plugins]
dirs = ["build/plugins"]
)";

}  // namespace

TEST_CASE("The config shape of the foundation issue loads with every value") {
  ConfigFile file(kIssueShape);
  auto config = load_config(file.path);
  CHECK(config.hostname == "mx.example.test");
  CHECK(config.data_dir == "var");
  REQUIRE(config.listeners.size() == 1);
  CHECK(config.listeners[0].info.protocol == "smtp");
  CHECK(config.listeners[0].endpoint.host == "127.0.0.1");
  CHECK(config.listeners[0].endpoint.port == 2525);
  CHECK(config.listeners[0].info.tls == tern::sdk::TlsMode::none);
  CHECK_FALSE(config.listeners[0].info.allow_plaintext_auth);
  CHECK(config.tls_cert == "var/tls/cert.pem");
  CHECK(config.plugin_dirs == std::vector<std::filesystem::path>{"build/plugins"});
  CHECK(config.store_backend == "sqlite");
}

TEST_CASE("Without a [tls] section the certificate lives under the data folder") {
  ConfigFile file("[server]\ndata_dir = \"/srv/tern\"\n");
  auto config = load_config(file.path);
  CHECK(config.tls_cert == "/srv/tern/tls/cert.pem");
  CHECK(config.tls_key == "/srv/tern/tls/key.pem");
}

TEST_CASE("An unknown key is an error naming file, line and key") {
  ConfigFile file("[server]\nhostname = \"a.test\"\nhost_name = \"b.test\"\n");
  try {
    load_config(file.path);
    FAIL("accepted an unknown key");
  } catch (const ConfigInvalid& invalid) {
    REQUIRE(invalid.errors().size() == 1);
    CHECK(invalid.errors()[0] == file.path.string() + ":3: server.host_name: unknown key");
  }
}

TEST_CASE("An unknown section is an error") {
  auto errors = errors_of("[servre]\nhostname = \"a.test\"\n");
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], Catch::Contains(":1: servre: unknown key"));
}

TEST_CASE("A value of the wrong type names what it must be") {
  auto errors = errors_of("[server]\nthreads = \"four\"\n");
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], Catch::EndsWith(":2: server.threads: must be an integer"));
}

TEST_CASE("Bad listener values are errors with the listener's index") {
  auto errors = errors_of(R"([[listener]]
protocol = "smtp"
address = "localhost:25"
tls = "sometimes"
[[listener]]
address = "127.0.0.1:70000"
)");
  REQUIRE(errors.size() == 4);
  CHECK_THAT(errors[0], Catch::Contains(":3: listener[0].address: must be an IP address and port"));
  CHECK_THAT(errors[1], Catch::Contains(":4: listener[0].tls: must be \"none\", \"starttls\" or \"implicit\""));
  CHECK_THAT(errors[2], Catch::Contains("listener[1].protocol: is required"));
  CHECK_THAT(errors[3], Catch::Contains(":6: listener[1].address: must be an IP address and port"));
}

TEST_CASE("A TOML syntax error names the line") {
  auto errors = errors_of("[server]\nhostname = \"unterminated\n");
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], Catch::Contains(":2: (syntax):"));
}

TEST_CASE("Every error of a file is reported, not only the first") {
  auto errors = errors_of("[server]\nthreads = -1\n[log]\nformat = \"xml\"\nlevel = \"loud\"\n");
  CHECK(errors.size() == 3);
}

TEST_CASE("Plaintext authentication is off unless a listener turns it on") {
  ConfigFile file(R"([[listener]]
protocol = "pop3"
address = "[::1]:1110"
allow_plaintext_auth = true
)");
  auto config = load_config(file.path);
  REQUIRE(config.listeners.size() == 1);
  CHECK(config.listeners[0].endpoint.host == "::1");
  CHECK(config.listeners[0].info.allow_plaintext_auth);
}

TEST_CASE("Endpoints are IP literals with a port") {
  using tern::config::parse_endpoint;
  CHECK(parse_endpoint("127.0.0.1:25"));
  CHECK(parse_endpoint("[::1]:587"));
  CHECK_FALSE(parse_endpoint("127.0.0.1"));
  CHECK_FALSE(parse_endpoint("127.0.0.1:0"));
  CHECK_FALSE(parse_endpoint("mail.example.org:25"));
  CHECK_FALSE(parse_endpoint("127.0.0.1:25x"));
}
