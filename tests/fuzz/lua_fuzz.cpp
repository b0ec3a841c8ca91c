// libFuzzer target for the Lua API surface: the input is a script. It is loaded as the server loads scripts
// (sandbox, tern.hook, the top level under a budget); then each hook it registered is called once, at its stage,
// with a tx that knows everything a stage can know, on a loop of its own, with the unit tests' TestServer (no
// store or network; those calls fail as they would in production). Whatever the script does with tern.* and tx,
// the outcome is a verdict or an exception the pipeline turns into a defer: never a crash.
#include <utility>  // before Boost.Asio: Boost 1.74's awaitable.hpp needs it with g++ 12

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <stdexcept>
#include <string>

#include "lua_runtime.hpp"
#include "tern/sdk/hook.hpp"
#include "tern/sdk/log.hpp"
#include "tern/sdk/protocol.hpp"
#include "test_server.hpp"

namespace {

using namespace tern;

const std::string kMessage =
    "From: Carol <carol@remote.test>\r\nTo: alice@example.test\r\nSubject: fuzz\r\nMessage-ID: <m@remote.test>\r\n"
    "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n"
    "hello\r\n--b\r\nContent-Type: application/octet-stream; name=x.exe\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    "TVqQAA==\r\n--b--\r\n";

// Every accessor answers; the changes a hook asks for are checked as the SMTP plugin checks them, then dropped.
class Everything final : public sdk::HookContext {
 public:
  explicit Everything(sdk::Stage stage) : stage_(stage) {
    client_ = {"fuzz1", "smtp", "192.0.2.1", 2525, "client.test", true, "alice@example.test"};
    envelope_.sender = "carol@remote.test";
    envelope_.recipients = {{"alice@example.test", "", ""}, {"bob@example.test", "SUCCESS", "rfc822;bob@example.test"}};
  }
  sdk::Stage stage() const override { return stage_; }
  const sdk::ClientInfo& client() const override { return client_; }
  const sdk::Envelope* envelope() const override { return &envelope_; }
  std::string_view recipient() const override { return "alice@example.test"; }
  std::string_view message() const override { return kMessage; }
  void add_header(std::string_view name, std::string_view value) override {
    if (name.empty() || name.find_first_of(": \t\r\n") != std::string_view::npos ||
        value.find_first_of("\r\n") != std::string_view::npos) {
      throw std::invalid_argument("bad header");
    }
  }
  std::size_t remove_header(std::string_view) override { return 0; }
  void set_sender(std::string_view) override {}
  void add_recipient(std::string_view) override {}
  bool remove_recipient(std::string_view) override { return false; }
  void add_flag(std::string_view) override {}
  void redirect(std::string_view) override {}

 private:
  sdk::Stage stage_;
  sdk::ClientInfo client_;
  sdk::Envelope envelope_;
};

// Outside the extern "C" function: g++ 12 gives two lambdas of one extern "C" function the same symbol.
void run_script(const std::string& source) {
  lua::Budget budget;
  budget.time = std::chrono::milliseconds(50);
  budget.memory_kib = 4096;
  std::shared_ptr<const lua::ScriptSet> scripts;
  try {
    scripts = lua::prepare_scripts({{"fuzz.lua", source}}, budget);
  } catch (const std::runtime_error&) {
    return;  // refused with its error, as a config load would be
  }
  testing::TestServer server;
  lua::LuaRuntime runtime(scripts, &server.log());
  for (std::size_t index = 0; index < scripts->hooks.size(); ++index) {
    Everything context(scripts->hooks[index].stage);
    boost::asio::io_context loop;
    boost::asio::co_spawn(
        loop,
        [&]() -> sdk::Task<void> {
          const sdk::Verdict verdict = co_await runtime.call(index, context, server);
          static_cast<void>(verdict);
        },
        [](std::exception_ptr failure) {
          if (!failure) return;
          try {
            std::rethrow_exception(failure);
          } catch (const std::runtime_error&) {
            // a script error or a broken budget: the pipeline's defer
          }
        });
    loop.run();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  run_script(std::string(reinterpret_cast<const char*>(data), size));
  return 0;
}
