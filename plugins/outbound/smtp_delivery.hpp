// Delivery of jobs over SMTP to one destination (a domain's MX hosts, or a relay), keeping one connection open
// from job to job while the same host serves.
#pragma once

#include <memory>
#include <string>

#include "delivery_job.hpp"
#include "mail_hosts.hpp"
#include "smtp_client.hpp"
#include "tern/sdk/service.hpp"

namespace tern::outbound {

class SmtpDelivery {
 public:
  SmtpDelivery(sdk::ServiceContext& context, const Settings& settings, Destination& destination)
      : context_(context), settings_(settings), destination_(destination) {}

  // Sets an outcome for each of the job's recipients. `message` is the queued message.
  sdk::Task<void> deliver(Job& job, const std::string& message);
  // Ends the connection politely, if one is open.
  sdk::Task<void> close();
  // Drops the connection without a word: after a failure that leaves its state unknown.
  void abandon() {
    client_.reset();
    client_address_.clear();
  }

 private:
  // Sends the message to the recipients `remaining` over the open connection to `peer`, in as many transactions
  // as its recipient limit asks; sets each one's outcome. Returns those the host deferred, for the next host.
  sdk::Task<std::vector<std::size_t>> transfer(Job& job, const std::string& message, std::string peer,
                                               std::vector<std::size_t> remaining, std::string& last_failure);
  // A connection to `address`, greeted, TLS and AUTH done as the route asks; null with `failure` set
  // (an enhanced code first) when the host cannot be used now.
  sdk::Task<std::unique_ptr<SmtpClient>> open(std::string host, std::string address, std::string& failure);
  sdk::Task<MxAnswer> hosts();

  sdk::ServiceContext& context_;
  const Settings& settings_;
  Destination& destination_;
  std::unique_ptr<SmtpClient> client_;
  std::string client_address_;
};

}  // namespace tern::outbound
