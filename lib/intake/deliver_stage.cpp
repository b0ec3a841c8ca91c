#include "deliver_stage.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

#include "tern/sdk/address.hpp"
#include "tern/sdk/header.hpp"

namespace tern::intake {
namespace {

// RFC 3501 flag: a system flag (a backslash and an atom) or a keyword (an atom).
bool is_imap_flag(std::string_view flag) {
  if (!flag.empty() && flag.front() == '\\') flag.remove_prefix(1);
  if (flag.empty() || flag.size() > 100) return false;
  return std::all_of(flag.begin(), flag.end(), [](char c) {
    return c > ' ' && c < 0x7f && std::string_view("(){%*\"\\]").find(c) == std::string_view::npos;
  });
}

}  // namespace

void DeliverContext::add_flag(std::string_view flag) {
  if (!is_imap_flag(flag)) throw std::invalid_argument("add_flag(): \"" + std::string(flag) + "\" is not an IMAP flag");
  if (sdk::same_ascii(flag, "\\Recent")) return;  // the server's to set, never stored
  std::size_t start = 0;
  while (start < flags_.size()) {
    std::size_t end = flags_.find(' ', start);
    if (end == std::string::npos) end = flags_.size();
    if (sdk::same_ascii(std::string_view(flags_).substr(start, end - start), flag)) return;
    start = end + 1;
  }
  if (!flags_.empty()) flags_ += ' ';
  flags_ += flag;
}

void DeliverContext::redirect(std::string_view address) {
  if (!sdk::is_address(address)) {
    throw std::invalid_argument("redirect(): \"" + std::string(address) + "\" is not a mail address");
  }
  redirects_.emplace_back(address);
}

sdk::Task<Decisions> decide(sdk::ServerContext& server, const sdk::ClientInfo& client, const sdk::Envelope& envelope,
                            const std::vector<std::string>& users, std::string_view message, std::string_view passed,
                            std::string_view folder, std::string_view name) {
  Decisions decisions;
  for (const std::string& user : users) {
    DeliverContext context(client, envelope, user, message);
    const sdk::Verdict verdict = co_await server.run_hooks(sdk::Stage::deliver, context);
    if (verdict.refuses()) {
      decisions.refusal = verdict;
      co_return decisions;
    }
    if (!context.redirects().empty()) {
      if (sdk::has_header_value(passed, "Delivered-To", user)) {
        server.log().warn(fmt::format("message {}: not redirected for {} again, it passed them before", name, user));
      } else {
        for (const std::string& to : context.redirects()) decisions.redirects.emplace_back(to, user);
        decisions.redirected_by += fmt::format("Delivered-To: {}\r\n", user);
      }
    }
    if (verdict.kind == sdk::VerdictKind::discard) continue;
    decisions.filings.push_back(
        {user, verdict.kind == sdk::VerdictKind::quarantine ? verdict.folder : std::string(folder), context.flags()});
  }
  co_return decisions;
}

void add_redirects(sdk::Directory& directory, const Decisions& decisions, sdk::Intake& intake) {
  for (const auto& [to, user] : decisions.redirects) {
    const sdk::RecipientExpansion expansion = directory.expand_recipient(to);
    for (const std::string& local : expansion.local_users) intake.filings.push_back({local, "INBOX", ""});
    std::vector<std::string> outside = expansion.forwards;
    if (expansion.local_users.empty() && outside.empty() && !directory.is_local_domain(sdk::domain_of(to))) {
      outside = {to};
    }
    for (const std::string& address : outside) intake.remote.push_back({address, "", "rfc822;" + user});
  }
}

}  // namespace tern::intake
