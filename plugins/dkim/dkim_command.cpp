#include "dkim_command.hpp"

#include <fmt/format.h>

#include <chrono>
#include <ctime>
#include <iostream>

#include "keys.hpp"
#include "tern/sdk/address.hpp"
#include "tern/sdk/service.hpp"

namespace tern::dkim {

namespace {

constexpr const char* kUsage =
    "usage: tern dkim keygen DOMAIN [--selector S] [--algorithm rsa|ed25519]\n"
    "       tern dkim show DOMAIN\n";

bool valid_selector(const std::string& selector) {
  return !selector.empty() && selector.size() <= 63 &&
         selector.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") == std::string::npos &&
         selector.front() != '-' && selector.back() != '-';
}

// The default selector: the algorithm and the day, so that a key made later for rotation gets another name.
std::string dated_selector(Algorithm algorithm) {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm day{};
  gmtime_r(&now, &day);
  return fmt::format("{}-{:04}{:02}{:02}", algorithm == Algorithm::rsa ? "rsa" : "ed25519", day.tm_year + 1900,
                     day.tm_mon + 1, day.tm_mday);
}

int show(const std::filesystem::path& data_dir, const std::string& domain) {
  std::vector<std::string> problems;
  int shown = 0;
  for (const SigningKey& key : read_keys(data_dir, problems)) {
    if (key.domain != domain) continue;
    std::cout << zone_line(key) << "\n";
    ++shown;
  }
  for (const std::string& problem : problems) std::cerr << problem << "\n";
  if (shown == 0) {
    std::cerr << fmt::format("no DKIM key for {}: make one with tern dkim keygen {}\n", domain, domain);
    return 1;
  }
  return 0;
}

}  // namespace

sdk::Task<int> DkimCommand::run(sdk::ServiceContext& context, std::vector<std::string> arguments) const {
  if (arguments.size() < 2 || (arguments[0] != "keygen" && arguments[0] != "show")) {
    std::cerr << kUsage;
    co_return 2;
  }
  const std::string domain = sdk::lower_ascii(arguments[1]);
  if (!sdk::is_domain_name(domain)) {
    std::cerr << fmt::format("{} is not a domain name\n{}", arguments[1], kUsage);
    co_return 2;
  }
  if (arguments[0] == "show") {
    if (arguments.size() != 2) {
      std::cerr << kUsage;
      co_return 2;
    }
    co_return show(context.data_dir(), domain);
  }
  Algorithm algorithm = Algorithm::rsa;
  std::string selector;
  for (std::size_t i = 2; i < arguments.size(); i += 2) {
    const bool has_value = i + 1 < arguments.size();
    if (arguments[i] == "--selector" && has_value) {
      selector = sdk::lower_ascii(arguments[i + 1]);
    } else if (arguments[i] == "--algorithm" && has_value &&
               (arguments[i + 1] == "rsa" || arguments[i + 1] == "ed25519")) {
      algorithm = arguments[i + 1] == "rsa" ? Algorithm::rsa : Algorithm::ed25519;
    } else {
      std::cerr << kUsage;
      co_return 2;
    }
  }
  if (selector.empty()) selector = dated_selector(algorithm);
  if (!valid_selector(selector)) {
    std::cerr << fmt::format("{} is no selector: letters, digits and '-'\n", selector);
    co_return 2;
  }
  sdk::MailStore& store = context.store();
  const bool local = co_await context.blocking([&] { return store.directory().is_local_domain(domain); });
  if (!local) {
    std::cerr << fmt::format("{} is not a local domain: add it first (tern domain add {})\n", domain, domain);
    co_return 1;
  }
  try {
    const SigningKey key = make_key(context.data_dir(), domain, selector, algorithm);
    std::cout << fmt::format("made {} key {} for {}; publish this record, then reload the server (SIGHUP):\n",
                             algorithm == Algorithm::rsa ? "an RSA" : "an Ed25519", selector, domain)
              << zone_line(key) << "\n";
  } catch (const std::exception& error) {
    std::cerr << error.what() << "\n";
    co_return 1;
  }
  co_return 0;
}

}  // namespace tern::dkim
