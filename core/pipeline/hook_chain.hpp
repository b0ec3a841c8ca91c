// The hook chains of the pipeline stages and the one runner that asks them for a verdict.
#pragma once

#include <array>
#include <string_view>
#include <vector>

#include "tern/sdk/hook.hpp"
#include "tern/sdk/log.hpp"
#include "tern/sdk/protocol.hpp"

namespace tern::pipeline {

class HookChain {
 public:
  // Keeps hooks of a stage ordered by priority, then by the order they were added.
  void add(sdk::HookSpec hook);
  std::size_t size(sdk::Stage stage) const { return chains_[index(stage)].size(); }

  // Runs the stage's chain (docs/architecture.md, "Hooks and verdicts"): the first verdict other than `next`
  // ends it, except at `connect` and `disconnect`, where every hook runs and the first decision is kept, and at
  // `queued`, where decisions are logged and ignored (the message is durable already). A hook that throws or
  // answers out of place becomes `defer 451 4.3.0` with a line in `server`'s log naming it. The verdict
  // returned has its reply filled in. A hook that waits (HookSpec::async_hook) is awaited with `server`; one
  // that does not is called directly, so a chain without waiting hooks never suspends.
  sdk::Task<sdk::Verdict> run(sdk::Stage stage, sdk::HookContext& context, sdk::ServerContext& server) const;

 private:
  static std::size_t index(sdk::Stage stage) { return static_cast<std::size_t>(stage); }
  // A hook's failure (its exception's message), logged; the verdict that stands for it.
  static sdk::Verdict failed(const sdk::HookSpec& hook, sdk::Stage stage, std::string_view what, sdk::Log& log);
  // Takes one hook's verdict into `decision`; true when the chain ends here.
  static bool settle(sdk::Stage stage, const sdk::HookSpec& hook, sdk::Verdict verdict, sdk::Verdict& decision,
                     sdk::Log& log);

  std::array<std::vector<sdk::HookSpec>, sdk::all_stages.size()> chains_;
};

// Fills in the reply of a decided verdict and checks one a hook supplied (reject 5xx, defer 4xx, disconnect
// 421 or 5xx, enhanced code of the same class, text on one line). A supplied reply that fails the check is
// replaced by the stage's default and `problem` says why; `problem` is empty otherwise.
sdk::Verdict complete_verdict(sdk::Stage stage, sdk::Verdict verdict, std::string& problem);

// The verdict for a hook that failed: defer 451 4.3.0.
sdk::Verdict hook_failure_verdict();

}  // namespace tern::pipeline
