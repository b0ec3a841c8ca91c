// One remote mailbox the fetch plugin collects, as [[plugin.fetch.account]] describes it.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tern/sdk/service.hpp"

namespace tern::fetch {

struct Account {
  std::string name;  // names its log lines and its seen-UIDL state ("fetch:<name>")
  enum class Protocol { pop3, imap };
  Protocol protocol = Protocol::pop3;
  std::string folder = "INBOX";  // IMAP: the remote mailbox collected
  std::string server;
  std::uint16_t port = 995;
  sdk::ClientTls tls{sdk::TlsMode::implicit, true};
  std::string user;
  std::string password;
  std::string deliver_to;  // single-drop: the local user every message goes to
  // Multidrop (when `domain` is set instead): the mailbox gets the whole domain's mail, and each message's
  // local recipients are read from these header fields, tried in order ("Received": the topmost one's `for`
  // clause), then from To and Cc. Rules come first.
  std::string domain;
  std::vector<std::string> envelope_fields;
  struct Rule {
    std::string list_id;  // matches a List-Id field that contains it
    std::string sender;   // matches the Return-Path or From address
    std::vector<std::string> deliver_to;
  };
  std::vector<Rule> rules;
  std::chrono::seconds interval{1800};
  bool keep = false;  // leave collected messages on the server (they are remembered, not fetched again)
  // With keep: delete a message at the first poll this long after it was collected.
  std::optional<std::chrono::seconds> delete_after;
};

}  // namespace tern::fetch
