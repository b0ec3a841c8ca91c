#include "subscriptions.hpp"

#include <algorithm>
#include <mutex>

namespace tern::imap {
namespace {

constexpr const char* kSpace = "imap:subscriptions";

std::mutex& changes() {
  static std::mutex mutex;
  return mutex;
}

}  // namespace

std::optional<std::vector<std::string>> load_subscriptions(sdk::State& state, const std::string& user) {
  const std::optional<std::string> kept = state.get(kSpace, user);
  if (!kept) return std::nullopt;
  std::vector<std::string> names;
  for (std::size_t start = 0; start < kept->size();) {
    const std::size_t end = std::min(kept->find('\n', start), kept->size());
    if (end > start) names.push_back(kept->substr(start, end - start));
    start = end + 1;
  }
  std::sort(names.begin(), names.end());
  return names;
}

void change_subscription(sdk::State& state, const std::string& user, const std::string& name, bool subscribe,
                         const std::vector<sdk::MailboxInfo>& existing) {
  std::lock_guard lock(changes());
  std::optional<std::vector<std::string>> names = load_subscriptions(state, user);
  if (!names) {
    names.emplace();
    for (const sdk::MailboxInfo& mailbox : existing) names->push_back(mailbox.name);
  }
  std::erase(*names, name);
  if (subscribe) names->push_back(name);
  std::string value;
  for (const std::string& kept : *names) value += kept + "\n";
  state.put({sdk::StateChange{kSpace, user, std::move(value), 0}});
}

}  // namespace tern::imap
