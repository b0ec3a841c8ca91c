// The pipeline stages, in the order a message meets them (docs/architecture.md draws the path).
#pragma once

#include <array>
#include <optional>
#include <string_view>

namespace tern::sdk {

enum class Stage {
  connect,     // a client connected; every hook runs (a non-`next` verdict still ends in a refusal banner)
  helo,        // SMTP HELO/EHLO
  auth,        // SMTP AUTH succeeded: a hook may still refuse the login
  mail,        // SMTP MAIL FROM
  rcpt,        // SMTP RCPT TO, once per recipient
  data,        // SMTP DATA/BDAT begins: the envelope is complete, no body yet
  message,     // the whole message is received: headers and body can be read and headers added
  queued,      // the message is durable; verdicts other than `next` are logged and ignored
  route,       // per recipient: where the message goes
  deliver,     // per local recipient: filing into a mailbox
  login,       // POP3/IMAP login
  disconnect,  // the client left; every hook runs
};

inline constexpr std::array<Stage, 12> all_stages{Stage::connect, Stage::helo,    Stage::auth,    Stage::mail,
                                                  Stage::rcpt,    Stage::data,    Stage::message, Stage::queued,
                                                  Stage::route,   Stage::deliver, Stage::login,   Stage::disconnect};

inline constexpr std::string_view stage_name(Stage stage) {
  constexpr std::array<std::string_view, 12> names{"connect", "helo",   "auth",  "mail",    "rcpt",  "data",
                                                   "message", "queued", "route", "deliver", "login", "disconnect"};
  return names[static_cast<std::size_t>(stage)];
}

inline constexpr std::optional<Stage> stage_from_name(std::string_view name) {
  for (Stage stage : all_stages) {
    if (stage_name(stage) == name) return stage;
  }
  return std::nullopt;
}

}  // namespace tern::sdk
