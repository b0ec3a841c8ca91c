// What the scheduler hands a transport: one queue entry's recipients bound for one destination, and where the
// transport writes each recipient's outcome.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "outbound_settings.hpp"
#include "tern/sdk/store.hpp"

namespace tern::outbound {

struct RecipientResult {
  enum class Outcome { untried, delivered, temporary, permanent } outcome = Outcome::untried;
  std::string diagnostic;         // an SMTP reply ("250 2.0.0 Ok") or our own reason, led by an enhanced code
  std::string remote_host;        // "mx1.example.org[192.0.2.1]" when a host answered
  bool notice_passed_on = false;  // the next hop took the DSN request over: it reports success, not us
};

// A claimed entry while its deliveries run.
struct EntryInFlight {
  sdk::QueueEntry entry;
  std::vector<RecipientResult> results;  // one per entry.recipients
  std::size_t open_jobs = 0;
};

struct Job {
  std::shared_ptr<EntryInFlight> entry;
  std::vector<std::size_t> recipients;  // indexes into entry->entry.recipients

  void set(std::size_t index, RecipientResult::Outcome outcome, std::string diagnostic, std::string remote_host = {},
           bool passed_on = false) {
    entry->results[index] = {outcome, std::move(diagnostic), std::move(remote_host), passed_on};
  }
};

// Where jobs go: a domain's MX hosts, one relay, or one pipe program. Lives while it has jobs.
struct Destination {
  std::string key;  // "mx:example.org", "relay:<route>", "pipe:<route>"
  const Route* route = nullptr;
  std::string domain;  // mx: the domain whose hosts to look up
  std::deque<Job> jobs;
  std::size_t workers = 0;
  // Addresses that refused or timed out a connection, and those whose TLS handshake failed (opportunistic TLS
  // goes plaintext there), with when: passed over for a minute.
  std::map<std::string, std::chrono::steady_clock::time_point> unreachable;
  std::map<std::string, std::chrono::steady_clock::time_point> no_tls;
};

}  // namespace tern::outbound
