// `tern script upload|list|show|remove`: a user's delivery script lives in the store (sdk::kUserScriptSpace),
// where the lua plugin reads it at each delivery, so an upload takes effect at once, without a reload. Upload
// compiles the script first: one with a syntax error is refused with its line, and the previous one stays.
#include "cli/script_commands.hpp"

#include <fmt/format.h>

#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

extern "C" {
#include <lauxlib.h>
#include <lua.h>
}

#include "cli/store_session.hpp"
#include "tern/sdk/store.hpp"
#include "tern/sdk/text.hpp"

namespace tern::cli {
namespace {

// Big enough for any set of rules a person writes, small enough to be read at every delivery.
constexpr std::size_t kMaxScriptSize = 64 * 1024;

std::string read_script(const std::string& file) {
  std::ostringstream text;
  if (file == "-") {
    text << std::cin.rdbuf();
  } else {
    std::ifstream input(file, std::ios::binary);
    if (!input) throw CLI::ValidationError(fmt::format("cannot read {}", file));
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
  if (status != 0) throw CLI::ValidationError(error.empty() ? "the script does not compile" : error);
}

std::string existing_user(sdk::MailStore& store, const std::string& address) {
  const std::string user = sdk::lower_ascii(address);
  if (!store.password_hash(user)) throw sdk::DirectoryError(fmt::format("no user {}", address));
  return user;
}

}  // namespace

void add_script_commands(CLI::App& app, const std::string& config_file, std::function<int()>& action) {
  auto* script = app.add_subcommand("script", "users' own delivery scripts (Lua, run for their mail at deliver)")
                     ->require_subcommand(1);
  auto on = [&action](CLI::App* command, std::function<int()> body) {
    command->callback([&action, body] { action = body; });
  };
  auto user = std::make_shared<std::string>();
  auto file = std::make_shared<std::string>();

  auto* upload = script->add_subcommand("upload", "check a user's script and make it theirs (replaces the last)");
  upload->add_option("user", *user, "the user's address")->required();
  upload->add_option("file", *file, "the Lua script, or - for standard input")->required();
  on(upload, [&config_file, user, file] {
    const std::string source = read_script(*file);
    if (source.size() > kMaxScriptSize) {
      throw CLI::ValidationError(fmt::format("the script has {} octets; at most {}", source.size(), kMaxScriptSize));
    }
    StoreSession session(config_file);
    const std::string owner = existing_user(session.store(), *user);
    check_syntax(source, owner + ".lua");
    session.store().state_put({{sdk::kUserScriptSpace, owner, source}});
    std::cout << fmt::format("script of {} stored ({} octets)\n", owner, source.size());
    return 0;
  });

  on(script->add_subcommand("list", "the users who have a script, with its size"), [&config_file] {
    for (const auto& [owner, source] : StoreSession(config_file).store().state_list(sdk::kUserScriptSpace)) {
      std::cout << fmt::format("{} {} octets\n", owner, source.size());
    }
    return 0;
  });

  auto* show = script->add_subcommand("show", "print a user's script");
  show->add_option("user", *user, "the user's address")->required();
  on(show, [&config_file, user] {
    StoreSession session(config_file);
    const std::optional<std::string> source =
        session.store().state_get(sdk::kUserScriptSpace, existing_user(session.store(), *user));
    if (!source) throw sdk::DirectoryError(fmt::format("{} has no script", *user));
    std::cout << *source;
    return 0;
  });

  auto* remove = script->add_subcommand("remove", "remove a user's script: their mail is filed as if there were none");
  remove->add_option("user", *user, "the user's address")->required();
  on(remove, [&config_file, user] {
    StoreSession session(config_file);
    const std::string owner = sdk::lower_ascii(*user);
    if (!session.store().state_get(sdk::kUserScriptSpace, owner)) {
      throw sdk::DirectoryError(fmt::format("{} has no script", *user));
    }
    session.store().state_erase(sdk::kUserScriptSpace, owner);
    return 0;
  });
}

}  // namespace tern::cli
