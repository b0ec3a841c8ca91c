#include "script_command.hpp"

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>

extern "C" {
#include <lauxlib.h>
#include <lua.h>
}

#include "tern/sdk/text.hpp"
#include "user_scripts.hpp"

namespace tern::lua {
namespace {

// Big enough for any set of rules a person writes, small enough to be read at every delivery.
constexpr std::size_t kMaxScriptSize = 64 * 1024;

// A request the administrator must change (exit code 2), as opposed to one the store refused (1).
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string read_script(const std::string& file) {
  std::ostringstream text;
  if (file == "-") {
    text << std::cin.rdbuf();
  } else {
    std::ifstream input(file, std::ios::binary);
    if (!input) throw UsageError(fmt::format("cannot read {}", file));
    text << input.rdbuf();
  }
  return text.str();
}

// Compiles without running: a syntax error comes back as "<name>:<line>: <what>".
void check_syntax(const std::string& source, const std::string& name) {
  lua_State* L = luaL_newstate();
  if (L == nullptr) throw std::runtime_error("cannot make a Lua state");
  const std::string chunk = "@" + name;
  const int status = luaL_loadbuffer(L, source.data(), source.size(), chunk.c_str());
  std::string error = status != 0 && lua_isstring(L, -1) ? lua_tostring(L, -1) : "";
  lua_close(L);
  if (status != 0) throw UsageError(error.empty() ? "the script does not compile" : error);
}

std::string existing_user(sdk::MailStore& store, const std::string& address) {
  const std::string user = sdk::lower_ascii(address);
  if (!store.directory().password_hash(user)) throw sdk::DirectoryError(fmt::format("no user {}", address));
  return user;
}

}  // namespace

sdk::Task<int> ScriptCommand::run(sdk::ServiceContext& context, std::vector<std::string> arguments) const {
  CLI::App app{summary(), "tern script"};
  app.require_subcommand(1);
  std::string user;
  std::string file;
  std::function<int(sdk::MailStore&)> action;
  auto* upload = app.add_subcommand("upload", "check a user's script and make it theirs (replaces the last)");
  upload->add_option("user", user, "the user's address")->required();
  upload->add_option("file", file, "the Lua script, or - for standard input")->required();
  upload->callback([&] {
    action = [&](sdk::MailStore& store) {
      const std::string source = read_script(file);
      if (source.size() > kMaxScriptSize) {
        throw UsageError(fmt::format("the script has {} octets; at most {}", source.size(), kMaxScriptSize));
      }
      const std::string owner = existing_user(store, user);
      check_syntax(source, owner + ".lua");
      store.state().put({{kUserScriptSpace, owner, source}});
      std::cout << fmt::format("script of {} stored ({} octets)\n", owner, source.size());
      return 0;
    };
  });
  app.add_subcommand("list", "the users who have a script, with its size")->callback([&] {
    action = [](sdk::MailStore& store) {
      for (const auto& [owner, source] : store.state().list(kUserScriptSpace)) {
        std::cout << fmt::format("{} {} octets\n", owner, source.size());
      }
      return 0;
    };
  });
  auto* show = app.add_subcommand("show", "print a user's script");
  show->add_option("user", user, "the user's address")->required();
  show->callback([&] {
    action = [&](sdk::MailStore& store) {
      const std::optional<std::string> source = store.state().get(kUserScriptSpace, existing_user(store, user));
      if (!source) throw sdk::DirectoryError(fmt::format("{} has no script", user));
      std::cout << *source;
      return 0;
    };
  });
  auto* remove = app.add_subcommand("remove", "remove a user's script: their mail is filed as if there were none");
  remove->add_option("user", user, "the user's address")->required();
  remove->callback([&] {
    action = [&](sdk::MailStore& store) {
      const std::string owner = sdk::lower_ascii(user);
      if (!store.state().get(kUserScriptSpace, owner)) {
        throw sdk::DirectoryError(fmt::format("{} has no script", user));
      }
      store.state().erase(kUserScriptSpace, owner);
      return 0;
    };
  });
  int code = 1;
  try {
    std::reverse(arguments.begin(), arguments.end());  // CLI11 takes a vector last word first
    app.parse(arguments);
  } catch (const CLI::ParseError& error) {
    code = app.exit(error) == 0 ? 0 : 2;
    action = nullptr;
  }
  if (!action) co_return code;
  sdk::MailStore& store = context.store();
  co_await context.blocking([&] {
    try {
      code = action(store);
    } catch (const UsageError& error) {
      std::cerr << "tern: " << error.what() << '\n';
      code = 2;
    } catch (const std::exception& error) {
      std::cerr << "tern: " << error.what() << '\n';
      code = 1;
    }
  });
  co_return code;
}

}  // namespace tern::lua
