#include "recent.hpp"

#include <fmt/format.h>

#include <charconv>
#include <exception>

namespace tern::imap {
namespace {

constexpr const char* kSpace = "imap:recent";

std::string key_of(const std::string& user, const std::string& mailbox, std::uint32_t uidvalidity) {
  return fmt::format("{}\n{}\n{}", user, mailbox, uidvalidity);
}

}  // namespace

std::uint32_t& RecentClaims::entry(sdk::State& state, const std::string& key) {
  const auto found = watermarks_.find(key);
  if (found != watermarks_.end()) return found->second;
  // A mailbox nobody has selected since it was made has every message still to hand out.
  std::uint32_t stored = 1;
  if (const std::optional<std::string> value = state.get(kSpace, key)) {
    std::from_chars(value->data(), value->data() + value->size(), stored);
  }
  return watermarks_.emplace(key, stored).first->second;
}

std::uint32_t RecentClaims::claim(sdk::State& state, const std::string& user, const std::string& mailbox,
                                  std::uint32_t uidvalidity, std::uint32_t uidnext) {
  const std::string key = key_of(user, mailbox, uidvalidity);
  std::lock_guard lock(mutex_);
  std::uint32_t& mark = entry(state, key);
  const std::uint32_t first = mark;
  if (uidnext > mark) {
    mark = uidnext;
    try {
      state.put({sdk::StateChange{kSpace, key, std::to_string(uidnext), 0}});
    } catch (const std::exception&) {
      // A store that cannot write now (locked, full) must not keep the mailbox from being selected: the
      // watermark holds in memory, and at worst a restart hands these messages out as recent once more.
    }
  }
  return first;
}

std::uint32_t RecentClaims::watermark(sdk::State& state, const std::string& user, const std::string& mailbox,
                                      std::uint32_t uidvalidity) {
  std::lock_guard lock(mutex_);
  return entry(state, key_of(user, mailbox, uidvalidity));
}

}  // namespace tern::imap
