// RFC 3501's \Recent: a message is recent in the one session that first selects its mailbox after it arrived
// (section 2.3.2). Which messages of a mailbox have been handed out is one watermark per mailbox: every UID
// below it has gone to some session. Shared by every session of the server, and kept in the store's state so
// that a restart hands nothing out twice.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

#include "tern/sdk/store.hpp"

namespace tern::imap {

class RecentClaims {
 public:
  // Hands the calling session the mailbox's messages from the watermark up to `uidnext` (exclusive) and
  // raises the watermark to it; returns the first UID handed over (`uidnext` or above when none are). Runs on
  // a worker thread: it may read and write `state`, which may throw. Thread-safe.
  std::uint32_t claim(sdk::State& state, const std::string& user, const std::string& mailbox, std::uint32_t uidvalidity,
                      std::uint32_t uidnext);
  // The watermark, claiming nothing: what EXAMINE and STATUS see as recent (section 6.3.2: EXAMINE takes no
  // message's \Recent away).
  std::uint32_t watermark(sdk::State& state, const std::string& user, const std::string& mailbox,
                          std::uint32_t uidvalidity);

 private:
  std::uint32_t& entry(sdk::State& state, const std::string& key);  // with mutex_ held
  std::mutex mutex_;
  std::unordered_map<std::string, std::uint32_t> watermarks_;
};

}  // namespace tern::imap
