#include <catch2/catch.hpp>

#include "loader/plugin_loader.hpp"

using tern::loader::load_plugins;
using tern::loader::manifest_mismatch;

namespace {
const std::filesystem::path kFixtures = TERN_TEST_FIXTURE_PLUGINS;
}

TEST_CASE("The in-tree plugins load with their manifests") {
  auto set = load_plugins({TERN_PLUGIN_DIR}, {});
  CHECK(set.refused.empty());
  REQUIRE(set.find("smtp") != nullptr);
  REQUIRE(set.find("pop3") != nullptr);
  REQUIRE(set.find("store-sqlite") != nullptr);
  CHECK(set.find("smtp")->sdk_major == TERN_SDK_VERSION_MAJOR);
  CHECK(set.find("smtp")->entry != nullptr);
}

TEST_CASE("A plugin built for another SDK version is refused with both versions named") {
  auto set = load_plugins({kFixtures / "wrong-sdk"}, {});
  CHECK(set.loaded.empty());
  REQUIRE(set.refused.size() == 1);
  CHECK_THAT(set.refused[0].reason,
             Catch::Contains("built for SDK 99.0") &&
                 Catch::Contains("this server provides SDK " + std::to_string(TERN_SDK_VERSION_MAJOR) + "."));
}

TEST_CASE("A plugin built with another toolchain is refused with both signatures named") {
  auto set = load_plugins({kFixtures / "wrong-signature"}, {});
  CHECK(set.loaded.empty());
  REQUIRE(set.refused.size() == 1);
  CHECK_THAT(set.refused[0].reason, Catch::Contains("gcc-4.8") && Catch::Contains(TERN_SDK_BUILD_SIGNATURE));
}

TEST_CASE("A library without a manifest and a file that is not a library are refused") {
  auto set = load_plugins({kFixtures / "not-a-plugin", kFixtures / "garbage"}, {});
  CHECK(set.loaded.empty());
  REQUIRE(set.refused.size() == 2);
  CHECK_THAT(set.refused[0].reason, Catch::Contains("not a Tern plugin"));
  CHECK_THAT(set.refused[1].reason, Catch::Contains("cannot be loaded"));
}

TEST_CASE("A missing plugin folder is reported, not fatal") {
  auto set = load_plugins({kFixtures / "no-such-folder", TERN_PLUGIN_DIR}, {});
  CHECK(set.find("smtp") != nullptr);
  REQUIRE(set.refused.size() == 1);
  CHECK_THAT(set.refused[0].reason, Catch::Contains("does not exist"));
}

TEST_CASE("A disabled plugin is not loaded and is listed as disabled") {
  auto set = load_plugins({TERN_PLUGIN_DIR}, {"pop3"});
  CHECK(set.find("pop3") == nullptr);
  CHECK(set.disabled == std::vector<std::string>{"pop3"});
}

TEST_CASE("The same plugin found twice is loaded once") {
  auto once = load_plugins({TERN_PLUGIN_DIR}, {});
  auto twice = load_plugins({TERN_PLUGIN_DIR, TERN_PLUGIN_DIR}, {});
  CHECK(twice.loaded.size() == once.loaded.size());
  REQUIRE(twice.refused.size() == once.loaded.size());
  CHECK_THAT(twice.refused[0].reason, Catch::Contains("is loaded already"));
}

TEST_CASE("A manifest that is not a manifest is refused") {
  tern_plugin_manifest manifest{0x1234, 0, 0, "x", "1", TERN_SDK_BUILD_SIGNATURE, ""};
  CHECK_THAT(manifest_mismatch(manifest), Catch::Contains("not a Tern plugin manifest"));
  manifest.magic = TERN_PLUGIN_MAGIC;
  manifest.sdk_major = TERN_SDK_VERSION_MAJOR;
  manifest.sdk_minor = TERN_SDK_VERSION_MINOR + 1;
  CHECK_THAT(manifest_mismatch(manifest), Catch::Contains("built for SDK"));
  manifest.sdk_minor = TERN_SDK_VERSION_MINOR;
  CHECK(manifest_mismatch(manifest).empty());
}

TEST_CASE("The build signature carries a fingerprint of the SDK headers") {
  // A plugin built from other headers of the same SDK version must not match this server.
  const std::string signature = TERN_SDK_BUILD_SIGNATURE;
  CHECK_THAT(signature, Catch::Contains(";abi-" TERN_SDK_ABI_HASH));
  tern_plugin_manifest manifest{TERN_PLUGIN_MAGIC,
                                TERN_SDK_VERSION_MAJOR,
                                TERN_SDK_VERSION_MINOR,
                                "x",
                                "1",
                                "gcc-12.2;libstdc++-12-cxx11abi1;boost-1_74;sdk-0;abi-0000000000000000",
                                ""};
  CHECK_THAT(manifest_mismatch(manifest), Catch::Contains("abi-0000000000000000"));
}
