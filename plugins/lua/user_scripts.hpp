// Users' own delivery rules: the script `tern script upload` stored for a user runs at `deliver` for that
// user's mail only, in a state of its own with a smaller budget (script_set.hpp: user_script). A script that
// fails to load or to run is logged and the message is filed as if there were none: a user's rules can
// neither lose nor refuse their mail.
#pragma once

#include <memory>

#include "script_set.hpp"
#include "tern/sdk/async_hook.hpp"

namespace tern::lua {

// The state space where `tern script` keeps each user's delivery script (key: the user's address, lower case;
// value: the Lua source).
inline constexpr const char* kUserScriptSpace = "user-script";

class UserScriptCache;

class UserScriptHook final : public sdk::AsyncHook {
 public:
  UserScriptHook(Budget budget, sdk::Log* log);
  sdk::Task<sdk::Verdict> call(sdk::HookContext& context, sdk::ServerContext& server) const override;

 private:
  std::shared_ptr<UserScriptCache> cache_;
  sdk::Log* log_;
};

}  // namespace tern::lua
