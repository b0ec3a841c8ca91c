// libFuzzer target for the config loader: the input is a config file. A file it cannot take must come back as
// ConfigInvalid (file, line, key and what is wrong), never as a crash or another exception.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "config/server_config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::filesystem::path file =
      std::filesystem::temp_directory_path() / ("tern-config-fuzz-" + std::to_string(::getpid()) + ".toml");
  {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  try {
    tern::config::load_config(file);
  } catch (const tern::config::ConfigInvalid& invalid) {
    if (invalid.errors().empty()) __builtin_trap();  // a refusal must say why
  }
  return 0;
}
