#include "blob_files.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "tern/sdk/store.hpp"

namespace tern::store_sqlite {
namespace {

[[noreturn]] void fail(const std::string& what) {
  const std::string message = fmt::format("{}: {}", what, std::strerror(errno));
  if (errno == ENOSPC || errno == EDQUOT) throw sdk::StoreFull(message);
  throw sdk::StoreError(message);
}

void fsync_path(const std::filesystem::path& path, int flags) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) fail("open " + path.string());
  int result = ::fsync(fd);
  ::close(fd);
  if (result != 0) fail("fsync " + path.string());
}

void write_all(int fd, std::string_view content, const std::filesystem::path& path) {
  while (!content.empty()) {
    ssize_t written = ::write(fd, content.data(), content.size());
    if (written < 0) {
      if (errno == EINTR) continue;
      fail("write " + path.string());
    }
    content.remove_prefix(static_cast<std::size_t>(written));
  }
}

}  // namespace

std::string sha256_hex(std::string_view content) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  EVP_Digest(content.data(), content.size(), digest.data(), &length, EVP_sha256(), nullptr);
  std::string hex;
  hex.reserve(length * 2);
  for (unsigned int i = 0; i < length; ++i) hex += fmt::format("{:02x}", digest[i]);
  return hex;
}

BlobFiles::BlobFiles(std::filesystem::path root) : root_(std::move(root)), incoming_(root_ / "incoming") {
  std::filesystem::create_directories(incoming_);
}

std::filesystem::path BlobFiles::path_of(const std::string& hash) const {
  return root_ / hash.substr(0, 2) / hash;
}

std::string BlobFiles::write(std::string_view content) {
  std::string hash = sha256_hex(content);
  std::filesystem::path target = path_of(hash);
  if (std::filesystem::exists(target)) return hash;

  std::filesystem::path folder = target.parent_path();
  std::error_code error;
  if (std::filesystem::create_directory(folder, error)) fsync_path(root_, O_RDONLY | O_DIRECTORY);
  static std::atomic<unsigned long> counter{0};
  std::filesystem::path temporary = incoming_ / fmt::format("{}.{}.{}", hash, ::getpid(), ++counter);
  int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
  if (fd < 0) fail("create " + temporary.string());
  try {
    write_all(fd, content, temporary);
    if (::fsync(fd) != 0) fail("fsync " + temporary.string());
  } catch (...) {
    ::close(fd);
    ::unlink(temporary.c_str());
    throw;
  }
  ::close(fd);
  if (::rename(temporary.c_str(), target.c_str()) != 0) {
    ::unlink(temporary.c_str());
    fail("rename to " + target.string());
  }
  fsync_path(folder, O_RDONLY | O_DIRECTORY);
  return hash;
}

std::string BlobFiles::read(const std::string& hash) const {
  std::ifstream file(path_of(hash), std::ios::binary);
  if (!file) fail("read blob " + hash);
  std::ostringstream content;
  content << file.rdbuf();
  return std::move(content).str();
}

void BlobFiles::remove(const std::string& hash) {
  std::error_code ignored;
  std::filesystem::remove(path_of(hash), ignored);
}

}  // namespace tern::store_sqlite
