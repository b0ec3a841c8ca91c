// A hook that waits: a DNS answer, a policy server, the store. It runs as a coroutine on the loop of the
// session it judges; while it waits, the loop serves other sessions. This header brings in Boost.Asio's
// coroutine types, as protocol.hpp does; a hook that never waits is a plain HookFunction (hook.hpp).
#pragma once

#include "tern/sdk/hook.hpp"
#include "tern/sdk/protocol.hpp"
#include "tern/sdk/verdict.hpp"

namespace tern::sdk {

// Registered through HookSpec::async_hook. Called on the session's loop, possibly on several loops at once
// (it must be thread-safe, as a HookFunction). `server` gives the store, the worker pool (offload, blocking)
// and the log; like `context`, it is valid only until the call returns. An exception becomes
// `defer 451 4.3.0` with a log line naming the hook, as for any hook.
class AsyncHook {
 public:
  virtual ~AsyncHook() = default;
  virtual Task<Verdict> call(HookContext& context, ServerContext& server) const = 0;
};

}  // namespace tern::sdk
