#include "pipeline/hook_chain.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <exception>
#include <optional>

#include "tern/sdk/async_hook.hpp"

namespace tern::pipeline {
namespace {

using sdk::Stage;
using sdk::Verdict;
using sdk::VerdictKind;

bool after_data(Stage stage) {
  return stage == Stage::data || stage == Stage::message || stage == Stage::queued || stage == Stage::deliver ||
         stage == Stage::route;
}

bool valid_enhanced(std::string_view enhanced, int code) {
  // class.subject.detail, class matching the reply code's first digit (RFC 3463)
  if (enhanced.size() < 5 || enhanced[0] != static_cast<char>('0' + code / 100) || enhanced[1] != '.') return false;
  std::size_t dots = 0;
  std::size_t digits = 0;
  for (std::size_t i = 2; i < enhanced.size(); ++i) {
    char c = enhanced[i];
    if (c == '.') {
      if (digits == 0 || digits > 3) return false;
      ++dots;
      digits = 0;
    } else if (c >= '0' && c <= '9') {
      ++digits;
    } else {
      return false;
    }
  }
  return dots == 1 && digits > 0 && digits <= 3;
}

bool single_line(std::string_view text) {
  return text.find_first_of("\r\n") == std::string_view::npos;
}

struct Default {
  int code;
  const char* enhanced;
  const char* text;
};

Default default_for(VerdictKind kind) {
  switch (kind) {
    case VerdictKind::reject: return {550, "5.7.1", "Rejected by policy"};
    case VerdictKind::defer: return {451, "4.7.1", "Try again later"};
    case VerdictKind::disconnect: return {421, "4.7.0", "Closing connection"};
    default: return {250, "2.0.0", "OK"};
  }
}

bool code_fits(VerdictKind kind, int code) {
  switch (kind) {
    case VerdictKind::reject: return code >= 500 && code <= 599;
    case VerdictKind::defer: return code >= 400 && code <= 499;
    case VerdictKind::disconnect: return code == 421 || (code >= 500 && code <= 599);
    default: return code >= 200 && code <= 299;
  }
}

}  // namespace

Verdict hook_failure_verdict() {
  return Verdict::defer(451, "4.3.0", "Temporary local problem, try again later");
}

Verdict complete_verdict(Stage stage, Verdict verdict, std::string& problem) {
  problem.clear();
  if (!verdict.decided()) return verdict;
  if ((verdict.kind == VerdictKind::discard || verdict.kind == VerdictKind::quarantine) && !after_data(stage)) {
    problem = fmt::format("answered {} at {}, which is only valid from data on",
                          verdict.kind == VerdictKind::discard ? "discard" : "quarantine", sdk::stage_name(stage));
    return hook_failure_verdict();
  }
  if (verdict.kind == VerdictKind::quarantine && verdict.folder.empty()) {
    problem = "answered quarantine without a folder";
    return hook_failure_verdict();
  }
  if (verdict.kind == VerdictKind::route && (stage != Stage::route || verdict.route.empty())) {
    problem = stage != Stage::route
                  ? fmt::format("answered route at {}, which is only valid at route", sdk::stage_name(stage))
                  : "answered route without a route name";
    return hook_failure_verdict();
  }
  Default fallback = default_for(verdict.kind);
  if (verdict.code == 0) {
    verdict.code = fallback.code;
    if (verdict.enhanced.empty()) verdict.enhanced = fallback.enhanced;
  } else if (!code_fits(verdict.kind, verdict.code)) {
    problem = fmt::format("supplied code {} that does not fit its verdict", verdict.code);
    verdict.code = fallback.code;
    verdict.enhanced = fallback.enhanced;
  }
  if (verdict.enhanced.empty()) {
    verdict.enhanced = fmt::format("{}.{}", verdict.code / 100, verdict.kind == VerdictKind::accept ? "0.0" : "7.0");
  } else if (!valid_enhanced(verdict.enhanced, verdict.code)) {
    problem = fmt::format("supplied enhanced code \"{}\" that does not fit reply {}", verdict.enhanced, verdict.code);
    verdict.enhanced = fmt::format("{}.{}", verdict.code / 100, verdict.kind == VerdictKind::accept ? "0.0" : "7.0");
  }
  if (!single_line(verdict.text)) {
    problem = "supplied a reply text with a line break";
    verdict.text.clear();
  }
  if (verdict.text.empty()) verdict.text = fallback.text;
  return verdict;
}

void HookChain::add(sdk::HookSpec hook) {
  auto& chain = chains_[index(hook.stage)];
  auto position = std::upper_bound(chain.begin(), chain.end(), hook.priority,
                                   [](int priority, const sdk::HookSpec& other) { return priority < other.priority; });
  chain.insert(position, std::move(hook));
}

Verdict HookChain::failed(const sdk::HookSpec& hook, Stage stage, std::string_view what, sdk::Log& log) {
  log.error(fmt::format("hook {} failed at {}: {}", hook.name, sdk::stage_name(stage), what));
  return hook_failure_verdict();
}

bool HookChain::settle(Stage stage, const sdk::HookSpec& hook, Verdict verdict, Verdict& decision, sdk::Log& log) {
  if (!verdict.decided()) return false;
  std::string problem;
  verdict = complete_verdict(stage, std::move(verdict), problem);
  if (!problem.empty()) log.error(fmt::format("hook {} {}", hook.name, problem));
  if (stage == Stage::queued) {
    log.warn(fmt::format("hook {} decided at queued, where the message is stored already; ignored", hook.name));
    return false;
  }
  if (!decision.decided()) decision = std::move(verdict);
  const bool run_all = stage == Stage::connect || stage == Stage::disconnect;
  return !run_all;
}

sdk::Task<Verdict> HookChain::run(Stage stage, sdk::HookContext& context, sdk::ServerContext& server) const {
  Verdict decision;
  for (const sdk::HookSpec& hook : chains_[index(stage)]) {
    Verdict verdict;
    std::optional<std::string> failure;
    try {
      if (hook.function) {
        // The fast path: a hook that never waits is a plain call, and a chain of only such hooks never suspends.
        verdict = hook.function(context);
      } else {
        const Verdict answer = co_await hook.async_hook->call(context, server);
        verdict = answer;
      }
    } catch (const std::exception& error) {
      failure = error.what();
    } catch (...) {
      failure = "an unknown exception";
    }
    if (failure) verdict = failed(hook, stage, *failure, server.log());
    if (settle(stage, hook, std::move(verdict), decision, server.log())) break;
  }
  co_return decision;
}

}  // namespace tern::pipeline
