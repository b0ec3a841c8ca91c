#include "received_spf.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstring>

namespace tern::spf {

namespace {

// A value as a dot-atom when it is one, else as a quoted-string.
std::string field_value(std::string_view value) {
  const bool atom = !value.empty() && value.front() != '.' && value.back() != '.' &&
                    std::all_of(value.begin(), value.end(), [](char c) {
                      return std::isalnum(static_cast<unsigned char>(c)) || std::strchr("!#$%&'*+-/=?^_`{|}~.", c);
                    });
  if (atom) return std::string(value);
  std::string quoted = "\"";
  for (const char c : value) {
    if (c == '"' || c == '\\') quoted += '\\';
    if (c >= 0x20 && c < 0x7f) quoted += c;
  }
  return quoted + "\"";
}

// Text safe inside a comment: printable ASCII without parentheses or backslashes.
std::string comment_text(std::string_view text) {
  std::string out;
  for (const char c : text) out += (c >= 0x20 && c < 0x7f && c != '(' && c != ')' && c != '\\') ? c : ' ';
  return out;
}

std::string words(const Outcome& outcome, const Query& query) {
  const std::string& who = outcome.identity;
  switch (outcome.result) {
    case Result::pass: return fmt::format("domain of {} designates {} as permitted sender", who, query.ip);
    case Result::fail: return fmt::format("domain of {} does not designate {} as permitted sender", who, query.ip);
    case Result::softfail:
      return fmt::format("domain of transitioning {} does not designate {} as permitted sender", who, query.ip);
    case Result::neutral: return fmt::format("{} is neither permitted nor denied by domain of {}", query.ip, who);
    case Result::none: return fmt::format("domain of {} does not designate permitted sender hosts", who);
    case Result::temperror: return fmt::format("error in processing during lookup of {}", who);
    case Result::permerror: return fmt::format("error in SPF record of domain of {}", who);
  }
  return {};
}

}  // namespace

std::string received_spf(const Outcome& outcome, const Query& query) {
  std::string field =
      fmt::format("{} ({}: {}) client-ip={}; envelope-from={}; helo={};", result_name(outcome.result),
                  comment_text(query.receiver), comment_text(words(outcome, query)), query.ip,
                  field_value(outcome.identity), field_value(query.helo.empty() ? "unknown" : query.helo));
  if (!query.receiver.empty()) field += fmt::format(" receiver={};", field_value(query.receiver));
  field += fmt::format(" identity={};", query.sender.empty() ? "helo" : "mailfrom");
  if (!outcome.mechanism.empty()) field += fmt::format(" mechanism={};", field_value(outcome.mechanism));
  if (!outcome.problem.empty()) field += fmt::format(" problem={};", field_value(outcome.problem));
  return field;
}

}  // namespace tern::spf
