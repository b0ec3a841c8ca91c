// The answer a hook gives: the contract between every hook and the core's pipeline runner.
#pragma once

#include <string>
#include <utility>

namespace tern::sdk {

enum class VerdictKind {
  // No opinion: the runner asks the next hook in the chain. A chain where every hook says `next` lets the
  // stage go ahead with its normal answer.
  next,
  // Decided yes: the rest of the chain is skipped and the stage goes ahead (SMTP: 250).
  accept,
  // Permanent refusal of what the stage is about (a recipient at `rcpt`, the message at `message`).
  // The code must be 5xx; 0 lets the core answer 550 5.7.1.
  reject,
  // Temporary refusal: the client should try again later. The code must be 4xx; 0 means 451 4.7.1.
  defer,
  // Answer, then close the connection. The code must be 421 or 5xx; 0 means 421 4.7.0.
  disconnect,
  // Accept the message and drop it without delivering it. Only valid from `data` on; at an earlier stage
  // the runner treats it as a misbehaving hook.
  discard,
  // Accept the message and deliver it to `folder` instead of the inbox. Only valid from `data` on.
  quarantine,
  // At `route` only: send this recipient by the configured route named `route` ("mx" is delivery by MX), not
  // the one its domain would take. At `route`, reject bounces the recipient with the hook's reply, defer
  // retries it later, discard drops it, and accept or next leave it to the configured routes.
  route,
};

// A hook's answer. Code, enhanced code and text are optional: when left empty the core supplies the reply
// that fits the stage and the kind. A reply a hook does supply is checked (a reject must be 5xx, a defer 4xx,
// an enhanced code must start with the same class digit); one that fails the check is replaced by the default
// and logged with the hook's name.
struct Verdict {
  VerdictKind kind = VerdictKind::next;
  int code = 0;
  std::string enhanced;  // "5.7.1": class.subject.detail, RFC 3463
  std::string text;
  std::string folder;  // for quarantine only
  std::string route;   // for route only

  static Verdict next() { return {}; }
  static Verdict accept() { return {VerdictKind::accept}; }
  static Verdict reject(int code = 0, std::string enhanced = {}, std::string text = {}) {
    return {VerdictKind::reject, code, std::move(enhanced), std::move(text)};
  }
  static Verdict defer(int code = 0, std::string enhanced = {}, std::string text = {}) {
    return {VerdictKind::defer, code, std::move(enhanced), std::move(text)};
  }
  static Verdict disconnect(int code = 0, std::string text = {}) {
    return {VerdictKind::disconnect, code, {}, std::move(text)};
  }
  static Verdict discard() { return {VerdictKind::discard}; }
  static Verdict quarantine(std::string folder) { return {VerdictKind::quarantine, 0, {}, {}, std::move(folder)}; }
  static Verdict route_by(std::string route) { return {VerdictKind::route, 0, {}, {}, {}, std::move(route)}; }

  bool decided() const { return kind != VerdictKind::next; }
  // Whether the client is told no (reject, defer or disconnect), as opposed to going ahead.
  bool refuses() const {
    return kind == VerdictKind::reject || kind == VerdictKind::defer || kind == VerdictKind::disconnect;
  }
};

}  // namespace tern::sdk
