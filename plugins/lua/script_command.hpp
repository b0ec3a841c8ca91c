// `tern script upload|list|show|remove`: users' own delivery scripts. A script lives in the store's state
// (kUserScriptSpace), where the deliver hook reads it at each delivery, so an upload takes effect at once,
// without a reload. Upload compiles the script first: one with a syntax error is refused with its line, and the
// previous one stays.
#pragma once

#include "tern/sdk/command.hpp"

namespace tern::lua {

class ScriptCommand final : public sdk::Command {
 public:
  std::string name() const override { return "script"; }
  std::string summary() const override { return "users' own delivery scripts (Lua, run for their mail at deliver)"; }
  sdk::Task<int> run(sdk::ServiceContext& context, std::vector<std::string> arguments) const override;
};

}  // namespace tern::lua
