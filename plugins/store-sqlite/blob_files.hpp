// Message bodies as files named by their SHA-256, written once, fsynced with their folders, and shared by
// every mailbox that holds the message.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace tern::store_sqlite {

class BlobFiles {
 public:
  // Creates `root` when missing.
  explicit BlobFiles(std::filesystem::path root);

  // Writes the content unless a blob with its hash exists already, and returns the hash. When it returns,
  // the file and its folder are on disk (fsynced). Throws sdk::StoreError.
  std::string write(std::string_view content);
  std::string read(const std::string& hash) const;
  // Removes the file; a missing file is not an error.
  void remove(const std::string& hash);
  std::filesystem::path path_of(const std::string& hash) const;

 private:
  std::filesystem::path root_;
  std::filesystem::path incoming_;
};

std::string sha256_hex(std::string_view content);

}  // namespace tern::store_sqlite
