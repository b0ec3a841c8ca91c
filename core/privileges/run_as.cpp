#include "privileges/run_as.hpp"

#include <fmt/format.h>
#include <grp.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace tern::privileges {
namespace {

[[noreturn]] void failed(const char* what) {
  throw std::runtime_error(fmt::format("cannot drop privileges: {}: {}", what, std::strerror(errno)));
}

// Writes only what differs: after the first start everything is the user's already, and a start then reads
// the folder's metadata without rewriting every inode.
void give(const std::filesystem::path& path, const config::RunAs& run_as, bool folder) {
  struct stat now {};
  const mode_t wanted = folder ? 0700 : 0600;
  const bool ok =
      ::lstat(path.c_str(), &now) == 0 &&
      ((now.st_uid == run_as.uid && now.st_gid == run_as.gid) || ::lchown(path.c_str(), run_as.uid, run_as.gid) == 0) &&
      ((now.st_mode & 07777) == wanted || ::chmod(path.c_str(), wanted) == 0);
  if (!ok) {
    throw std::runtime_error(fmt::format("cannot give {} to {}: {}", path.string(), run_as.user, std::strerror(errno)));
  }
}

}  // namespace

void hand_over(const std::filesystem::path& path, const config::RunAs& run_as) {
  give(path, run_as, true);
  for (const auto& entry : std::filesystem::recursive_directory_iterator(path)) {
    if (entry.is_symlink()) continue;
    give(entry.path(), run_as, entry.is_directory());
  }
}

void become(const config::RunAs& run_as) {
  const gid_t groups[] = {run_as.gid};
  if (::setgroups(1, groups) != 0) failed("setgroups");
  if (::setresgid(run_as.gid, run_as.gid, run_as.gid) != 0) failed("setresgid");
  if (::setresuid(run_as.uid, run_as.uid, run_as.uid) != 0) failed("setresuid");
  if (run_as.uid != 0 && (::setuid(0) == 0 || ::seteuid(0) == 0)) {
    errno = EPERM;
    failed("root could be had back");
  }
}

void settle(const config::ServerConfig& config, bool warn_when_root) {
  if (::geteuid() != 0) return;
  if (!config.run_as) {
    if (warn_when_root) {
      spdlog::warn(
          "running as root: set [server] user and group so that the server drops root once its ports are "
          "bound");
    }
    return;
  }
  hand_over(config.data_dir, *config.run_as);
  become(*config.run_as);
  spdlog::info("running as user {} and group {}", config.run_as->user, config.run_as->group);
}

}  // namespace tern::privileges
