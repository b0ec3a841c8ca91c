// Which users' maildrops a POP3 session holds (RFC 1939 section 8: one session at a time gets the maildrop).
#pragma once

#include <mutex>
#include <string>
#include <unordered_set>

namespace tern::pop3 {

// Thread-safe: one set serves every session of the plugin, on every loop. In-process: nodes sharing a
// PostgreSQL store would need the lock in the store.
class MaildropLocks {
 public:
  // False when another session holds the user's maildrop.
  bool try_lock(const std::string& user) {
    std::lock_guard lock(mutex_);
    return held_.insert(user).second;
  }
  void unlock(const std::string& user) {
    std::lock_guard lock(mutex_);
    held_.erase(user);
  }

 private:
  std::mutex mutex_;
  std::unordered_set<std::string> held_;
};

}  // namespace tern::pop3
