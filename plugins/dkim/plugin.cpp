// Entry point of the dkim plugin: signs the mail that users who logged in send (submission), for the domains
// that have keys under data_dir/dkim (made by `tern dkim keygen`), with the newest key of each algorithm: RSA
// and Ed25519 side by side when both exist (RFC 8463 section 4). Keys are read at start and at each reload.
#include <fmt/format.h>

#include <chrono>
#include <map>

#include "dkim_command.hpp"
#include "keys.hpp"
#include "signer.hpp"
#include "tern/sdk/address.hpp"
#include "tern/sdk/async_hook.hpp"
#include "tern/sdk/header.hpp"
#include "tern/sdk/plugin.hpp"

#include "addresses.hpp"

namespace {

using tern::dkim::SigningKey;
using tern::sdk::Verdict;

// The keys that sign each domain's mail: the newest of each algorithm.
using KeysByDomain = std::map<std::string, std::vector<SigningKey>>;

KeysByDomain signing_keys(const std::vector<SigningKey>& keys) {
  KeysByDomain chosen;
  for (const SigningKey& key : keys) {
    std::vector<SigningKey>& own = chosen[key.domain];
    const auto same =
        std::find_if(own.begin(), own.end(), [&](const SigningKey& other) { return other.algorithm == key.algorithm; });
    if (same == own.end()) {
      own.push_back(key);
    } else if (key.made > same->made) {
      *same = key;
    }
  }
  return chosen;
}

class SignHook final : public tern::sdk::AsyncHook {
 public:
  explicit SignHook(KeysByDomain keys) : keys_(std::move(keys)) {}

  tern::sdk::Task<Verdict> call(tern::sdk::HookContext& context, tern::sdk::ServerContext& server) const override {
    if (context.client().user.empty()) co_return Verdict::next();
    const std::string_view message = context.message();
    // The domain of the one author (a From of several addresses is signed by none of them).
    const std::vector<std::string> authors =
        tern::mime::address_specs(tern::sdk::header_value(message, "From").value_or(""));
    if (authors.size() != 1 || tern::sdk::count_header_fields(message, "From") != 1) co_return Verdict::next();
    const auto found = keys_.find(tern::sdk::domain_of(authors.front()));
    if (found == keys_.end()) co_return Verdict::next();
    const std::int64_t now =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    // RSA signing takes a millisecond or so: on the worker pool, not the loop.
    std::vector<std::string> signatures;
    const std::vector<SigningKey>& keys = found->second;
    co_await server.offload([&] {
      for (const SigningKey& key : keys) signatures.push_back(tern::dkim::sign(message, key, now));
    });
    for (const std::string& signature : signatures) context.add_header("DKIM-Signature", signature);
    server.count("dkim_signed", 1);
    co_return Verdict::next();
  }

 private:
  KeysByDomain keys_;
};

}  // namespace

TERN_PLUGIN("dkim", "0.1.0", "hook:message,command:dkim") {
  registrar.add_command(std::make_shared<tern::dkim::DkimCommand>());
  std::vector<std::string> problems;
  const std::vector<SigningKey> keys = tern::dkim::read_keys(registrar.data_dir(), problems);
  for (const std::string& problem : problems) registrar.log().warn(problem);
  KeysByDomain chosen = signing_keys(keys);
  for (const auto& [domain, own] : chosen) {
    for (const SigningKey& key : own)
      registrar.log().info(fmt::format("signing mail from {} with {}", domain, key.selector));
  }
  // Last in the chain: no hook after it changes a field it signed.
  registrar.add_hook(
      {"dkim.sign", tern::sdk::Stage::message, 10000, {}, std::make_shared<SignHook>(std::move(chosen))});
}
