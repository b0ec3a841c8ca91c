#include <catch2/catch.hpp>

#include "dsn.hpp"

using tern::outbound::compose_dsn;
using tern::outbound::DsnReport;
using tern::outbound::notify_wants;
using tern::outbound::status_of;

namespace {

DsnReport failure_report(std::string ret) {
  DsnReport report;
  report.reporting_host = "mx.example.test";
  report.sender = "alice@example.test";
  report.envid = "QQ314159";
  report.ret = std::move(ret);
  report.arrival = 1700000000;
  report.recipients.push_back({"bob@remote.test", "rfc822;Bob@remote.test", "failed",
                               "550 5.1.1 <bob@remote.test>: Recipient address rejected: User unknown",
                               "mx1.remote.test[127.0.0.2]"});
  return report;
}

const std::string kOriginal = "From: alice@example.test\r\nSubject: hello\r\n\r\nthe body\r\n";

}  // namespace

TEST_CASE("A bounce is a multipart/report with the delivery status of each failed recipient") {
  const std::string dsn = compose_dsn(failure_report(""), kOriginal, 1700000100);
  CHECK(dsn.find("From: Mail Delivery System <MAILER-DAEMON@mx.example.test>\r\n") != std::string::npos);
  CHECK(dsn.find("To: <alice@example.test>\r\n") != std::string::npos);
  CHECK(dsn.find("Content-Type: multipart/report; report-type=delivery-status;") != std::string::npos);
  CHECK(dsn.find("Reporting-MTA: dns; mx.example.test\r\n") != std::string::npos);
  CHECK(dsn.find("Original-Envelope-Id: QQ314159\r\n") != std::string::npos);
  CHECK(dsn.find("Original-Recipient: rfc822;Bob@remote.test\r\n") != std::string::npos);
  CHECK(dsn.find("Final-Recipient: rfc822; bob@remote.test\r\n") != std::string::npos);
  CHECK(dsn.find("Action: failed\r\nStatus: 5.1.1\r\n") != std::string::npos);
  CHECK(dsn.find("Remote-MTA: dns; mx1.remote.test\r\n") != std::string::npos);
  CHECK(dsn.find("Diagnostic-Code: smtp; 550 5.1.1 <bob@remote.test>") != std::string::npos);
  CHECK(dsn.find("Content-Type: message/rfc822\r\n\r\n" + kOriginal) != std::string::npos);
  CHECK(dsn.find("Auto-Submitted: auto-replied\r\n") != std::string::npos);
}

TEST_CASE("RET=HDRS returns the original's header only") {
  const std::string dsn = compose_dsn(failure_report("HDRS"), kOriginal, 1700000100);
  CHECK(dsn.find("Content-Type: text/rfc822-headers\r\n\r\nFrom: alice@example.test\r\nSubject: hello\r\n") !=
        std::string::npos);
  CHECK(dsn.find("the body") == std::string::npos);
}

TEST_CASE("The status comes from the reply's enhanced code, else from its class, else from our own reason") {
  CHECK(status_of("550 5.1.1 unknown", "failed") == "5.1.1");
  CHECK(status_of("451 try later", "delayed") == "4.0.0");
  CHECK(status_of("554 no", "failed") == "5.0.0");
  CHECK(status_of("5.1.10 Domain x does not accept mail (null MX)", "failed") == "5.1.10");
  CHECK(status_of("4.4.1 cannot connect", "failed") == "4.4.1");
  CHECK(status_of("", "failed") == "5.0.0");
}

TEST_CASE("NOTIFY decides which notices a recipient's sender gets") {
  CHECK(notify_wants("", "FAILURE"));
  CHECK(notify_wants("", "DELAY"));
  CHECK_FALSE(notify_wants("", "SUCCESS"));
  CHECK(notify_wants("SUCCESS,FAILURE", "SUCCESS"));
  CHECK_FALSE(notify_wants("NEVER", "FAILURE"));
  CHECK_FALSE(notify_wants("success", "DELAY"));
}
