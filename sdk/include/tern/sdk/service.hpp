// A background task of a plugin: a poller that collects remote mailboxes, a cleaner. It runs on one of the
// server's loops for as long as the configuration generation that registered it is the current one. This
// header brings in Boost.Asio's coroutine types, as protocol.hpp does.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "tern/sdk/protocol.hpp"

namespace tern::sdk {

// What a service gets besides the server context: when to stop, and a way to wait.
// Used from the service's own loop only.
class ServiceContext : public ServerContext {
 public:
  // True once the server shuts down or a reload replaced this service's generation: run() should return.
  virtual bool stopping() const = 0;
  // Waits for `duration`; false when stopping began first (it returns within a second of that).
  virtual Task<bool> sleep_for(std::chrono::seconds duration) = 0;
  // The server's data folder ([server] data_dir): where a service keeps lock files that the server and an
  // on-demand run (another process) both see.
  virtual const std::filesystem::path& data_dir() const = 0;

 protected:
  ~ServiceContext() = default;
};

// One object a generation; run() is called once, on one loop, when the generation starts serving.
class Service {
 public:
  virtual ~Service() = default;
  virtual std::string name() const = 0;
  // Returns when context.stopping(). An exception that escapes is logged, and the service is not restarted
  // until the next reload.
  virtual Task<void> run(ServiceContext& context) const = 0;
  // On demand, in the administrative command's own process (`tern <name> run [TARGET]`): one pass over
  // `target`, or over everything when it is empty, while the server may be running its own schedule. Returns
  // the command's exit code: 0 done, 1 failed, 2 an unknown target. A service without on-demand runs keeps
  // this default, which says so.
  virtual Task<int> run_once(ServiceContext& context, std::string target) const {
    context.log().error(name() + " has nothing to run on demand (" + target + ")");
    co_return 2;
  }
};

}  // namespace tern::sdk
