#include <catch2/catch.hpp>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "tern/sdk/config.hpp"

namespace {

// A section of a few keys, each an integer or a string, that keeps the errors it is told of.
class Section final : public tern::sdk::ConfigSection {
 public:
  std::map<std::string, std::variant<std::int64_t, std::string>, std::less<>> values;
  mutable std::vector<std::string> errors;

  std::optional<std::string> get_string(std::string_view key) const override {
    const auto found = values.find(key);
    if (found == values.end()) return std::nullopt;
    if (const auto* text = std::get_if<std::string>(&found->second)) return *text;
    error(key, "must be a string");
    return std::nullopt;
  }
  std::optional<std::int64_t> get_integer(std::string_view key) const override {
    const auto found = values.find(key);
    if (found == values.end()) return std::nullopt;
    if (const auto* number = std::get_if<std::int64_t>(&found->second)) return *number;
    error(key, "must be an integer");
    return std::nullopt;
  }
  std::optional<bool> get_bool(std::string_view) const override { return std::nullopt; }
  std::optional<std::vector<std::string>> get_strings(std::string_view) const override { return std::nullopt; }
  std::optional<std::vector<std::int64_t>> get_integers(std::string_view) const override { return std::nullopt; }
  std::vector<const ConfigSection*> get_tables(std::string_view) const override { return {}; }
  bool holds_string(std::string_view key) const override {
    const auto found = values.find(key);
    return found != values.end() && std::holds_alternative<std::string>(found->second);
  }
  void error(std::string_view key, std::string_view what) const override {
    errors.push_back(std::string(key) + ": " + std::string(what));
  }
  [[noreturn]] void fail(std::string_view key, std::string_view what) const override {
    error(key, what);
    throw tern::sdk::ConfigError(errors.back());
  }
};

enum class Mode { one, two, three };

}  // namespace

TEST_CASE("Every refused value is recorded and the reads carry on with the plugin's default") {
  Section section;
  section.values = {{"count", std::int64_t{0}}, {"mode", std::string("four")}, {"port", std::int64_t{70000}}};
  CHECK(section.integer("count", 5, 1) == 5);
  CHECK(section.choice("mode", Mode::two, {{"one", Mode::one}, {"two", Mode::two}, {"three", Mode::three}}) ==
        Mode::two);
  CHECK(section.port("port", 25) == 25);
  CHECK(section.required_string("name").empty());
  CHECK(section.errors == std::vector<std::string>{"count: must be a positive integer",
                                                   "mode: must be \"one\", \"two\" or \"three\"",
                                                   "port: must be 1 to 65535", "name: is required"});
}

TEST_CASE("A range names its bounds and unit; an absent key gives the default without an error") {
  Section section;
  section.values = {{"budget", std::int64_t{5}}, {"size", std::int64_t{10}}};
  CHECK(section.integer("budget", 100, 10, 1000, "milliseconds") == 100);
  CHECK(section.integer("size", 2048, 1024, std::numeric_limits<std::int64_t>::max(), "octets") == 2048);
  CHECK(section.integer("absent", 7, 1, 9) == 7);
  CHECK(section.errors ==
        std::vector<std::string>{"budget: must be 10 to 1000 milliseconds", "size: must be at least 1024 octets"});
}

TEST_CASE("Durations are seconds, or a number with s, m, h or d") {
  using std::chrono::seconds;
  Section section;
  section.values = {{"plain", std::int64_t{90}},  {"minutes", std::string("30m")}, {"days", std::string("5D")},
                    {"bad", std::string("soon")}, {"long", std::string("3d")},     {"words", std::string("1 h")}};
  CHECK(section.duration("plain", seconds(1), seconds(1), seconds(3600)) == seconds(90));
  CHECK(section.duration("minutes", seconds(1), seconds(1), seconds(3600)) == seconds(1800));
  CHECK(section.duration("days", seconds(1), seconds(1), std::chrono::days(7)) == std::chrono::days(5));
  CHECK(section.duration("bad", seconds(60), seconds(1), seconds(3600)) == seconds(60));
  CHECK(section.duration("long", seconds(60), seconds(1), seconds(3600)) == seconds(60));
  CHECK(section.duration("words", seconds(60), seconds(1), seconds(3600)) == seconds(60));
  REQUIRE(section.errors.size() == 3);
  CHECK_THAT(section.errors[0], Catch::StartsWith("bad: must be a number of seconds, or one with a unit"));
  CHECK(section.errors[1] == "long: must be 1 to 3600 seconds");
  CHECK_THAT(section.errors[2], Catch::StartsWith("words: must be a number of seconds"));
}

TEST_CASE("Sizes are octets, or a number with K, M or G (units of 1024)") {
  Section section;
  section.values = {{"plain", std::int64_t{65536}},
                    {"kib", std::string("64k")},
                    {"mib", std::string("25M")},
                    {"gib", std::string("2G")}};
  CHECK(section.size("plain", 1, 0, 1u << 30) == 65536);
  CHECK(section.size("kib", 1, 0, 1u << 30) == 65536);
  CHECK(section.size("mib", 1, 0, 1u << 30) == 25u * 1024 * 1024);
  CHECK(section.size("gib", 1, 0, 1u << 30) == 1);
  CHECK(section.errors == std::vector<std::string>{"gib: must be 0 to 1073741824 octets"});
}

TEST_CASE("An endpoint is a unix socket, host:port or [IPv6]:port; a bare host takes the default port") {
  Section section;
  section.values = {{"unix", std::string("unix:/run/clamav/clamd.ctl")},
                    {"tcp", std::string("127.0.0.1:3310")},
                    {"v6", std::string("[::1]:783")},
                    {"bare", std::string("spamd.example")},
                    {"noport", std::string("spamd.example")},
                    {"badport", std::string("host:99999")},
                    {"v6bare", std::string("::1")}};
  CHECK(section.endpoint("unix")->unix_path == "/run/clamav/clamd.ctl");
  CHECK(section.endpoint("tcp")->host == "127.0.0.1");
  CHECK(section.endpoint("tcp")->port == 3310);
  CHECK(section.endpoint("v6")->host == "::1");
  CHECK(section.endpoint("v6")->port == 783);
  CHECK(section.endpoint("bare", 783)->port == 783);
  CHECK_FALSE(section.endpoint("noport"));
  CHECK_FALSE(section.endpoint("badport"));
  CHECK_FALSE(section.endpoint("v6bare", 783));
  CHECK_FALSE(section.endpoint("absent"));
  CHECK(section.errors.size() == 3);
}
