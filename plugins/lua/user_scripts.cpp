#include "user_scripts.hpp"

#include <fmt/format.h>

#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "lua_runtime.hpp"
#include "tern/sdk/store.hpp"
#include "tern/sdk/text.hpp"

namespace tern::lua {

// The users' scripts compiled so far, by address: each made again when its source changes.
class UserScriptCache {
 public:
  explicit UserScriptCache(Budget budget) : budget_(budget) {}

  struct Prepared {
    std::shared_ptr<const ScriptSet> set;  // null when the script failed to load
    std::string error;
    bool fresh = false;  // made by this call: its error is news
  };

  // Called off the loop: a script's top level runs here, under the user budget.
  Prepared prepare(const std::string& user, const std::string& source) {
    std::lock_guard lock(mutex_);
    const auto found = entries_.find(user);
    if (found != entries_.end() && found->second.source == source) return found->second.prepared;
    if (entries_.size() >= kMaxEntries) entries_.clear();
    Entry entry{source, {}};
    try {
      entry.prepared.set = prepare_scripts({{user + ".lua", source}}, budget_, {}, true);
    } catch (const std::exception& error) {
      entry.prepared.error = error.what();
    }
    Prepared result = entry.prepared;
    result.fresh = true;
    entries_[user] = std::move(entry);
    return result;
  }

 private:
  static constexpr std::size_t kMaxEntries = 10000;
  struct Entry {
    std::string source;
    Prepared prepared;
  };
  Budget budget_;
  std::mutex mutex_;
  std::unordered_map<std::string, Entry> entries_;
};

UserScriptHook::UserScriptHook(Budget budget, sdk::Log* log)
    : cache_(std::make_shared<UserScriptCache>(budget)), log_(log) {}

sdk::Task<sdk::Verdict> UserScriptHook::call(sdk::HookContext& context, sdk::ServerContext& server) const {
  const std::string user = sdk::lower_ascii(context.recipient());
  UserScriptCache::Prepared prepared;
  bool has_script = false;
  const std::optional<std::string> failure = co_await server.attempt([&] {
    const std::optional<std::string> source = server.store().state().get(kUserScriptSpace, user);
    if (!source) return;
    has_script = true;
    prepared = cache_->prepare(user, *source);
  });
  if (failure) {
    log_->warn(fmt::format("the delivery script of {} could not be read, filed without it: {}", user, *failure));
    co_return sdk::Verdict::next();
  }
  if (!has_script) co_return sdk::Verdict::next();
  if (!prepared.set) {
    if (prepared.fresh) log_->warn(fmt::format("the delivery script of {} does not load: {}", user, prepared.error));
    co_return sdk::Verdict::next();
  }
  for (std::size_t index = 0; index < prepared.set->hooks.size(); ++index) {
    std::optional<sdk::Verdict> verdict;
    std::string error;
    try {
      const sdk::Verdict made = co_await LuaRuntime::for_thread(prepared.set, log_).call(index, context, server);
      verdict = made;
    } catch (const std::exception& caught) {
      error = caught.what();
    }
    if (!verdict) {
      log_->warn(fmt::format("the delivery script of {} failed, filed as if it had not run: {}", user, error));
      co_return sdk::Verdict::next();
    }
    switch (verdict->kind) {
      case sdk::VerdictKind::next: continue;
      case sdk::VerdictKind::accept:
      case sdk::VerdictKind::discard:
      case sdk::VerdictKind::quarantine: co_return *verdict;
      default:
        // Refusing, or routing, is the server's to decide: the user's script decides where their copy goes.
        log_->warn(
            fmt::format("the delivery script of {} returned a verdict a user's script may not give; filed "
                        "as usual",
                        user));
        co_return sdk::Verdict::next();
    }
  }
  co_return sdk::Verdict::next();
}

}  // namespace tern::lua
