// Entry point of the metrics plugin: the "metrics" protocol, an HTTP/1.x responder for one GET /metrics per
// connection. Enough HTTP for Prometheus and curl; anything else gets 400, 404 or 405.
#include <utility>  // before Boost.Asio: Boost 1.74's awaitable.hpp needs it with g++ 12

#include <fmt/format.h>

#include "tern/sdk/plugin.hpp"
#include "tern/sdk/protocol.hpp"
#include "tern/sdk/text.hpp"

namespace {

constexpr std::size_t kMaxLine = 8192;
constexpr int kMaxHeaderLines = 100;

std::string response(int status, std::string_view reason, std::string_view body) {
  return fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\n"
      "Connection: close\r\n\r\n{}",
      status, reason, body.size(), body);
}

std::string page(const std::vector<std::pair<std::string, std::int64_t>>& counters) {
  std::string body;
  for (const auto& [name, value] : counters) {
    body += fmt::format("# TYPE tern_{0}_total counter\ntern_{0}_total {1}\n", name, value);
  }
  return body;
}

class MetricsProtocol final : public tern::sdk::Protocol {
 public:
  std::string name() const override { return "metrics"; }
  std::string busy_reply() const override { return response(503, "Service Unavailable", "busy\n"); }

  tern::sdk::Task<void> serve(tern::sdk::Connection& connection, tern::sdk::ServerContext& server,
                              const tern::sdk::ListenerInfo&, tern::sdk::ClientInfo) const override {
    connection.set_read_timeout(std::chrono::seconds(10));
    std::string request;
    if (co_await connection.read_line(request, kMaxLine) != tern::sdk::ReadStatus::ok) co_return;
    // The header is read to its end before answering, so that the client is not reset mid-request.
    std::string line;
    int lines = 0;
    while (true) {
      const tern::sdk::ReadStatus status = co_await connection.read_line(line, kMaxLine);
      if (status != tern::sdk::ReadStatus::ok || ++lines > kMaxHeaderLines) {
        co_await connection.write(response(400, "Bad Request", "bad request\n"));
        co_return;
      }
      if (tern::sdk::strip_line_end(line).empty()) break;
    }
    const std::string_view text = tern::sdk::strip_line_end(request);
    const std::size_t space = text.find(' ');
    const std::size_t second = space == std::string_view::npos ? space : text.find(' ', space + 1);
    if (second == std::string_view::npos || !text.substr(second + 1).starts_with("HTTP/1.")) {
      co_await connection.write(response(400, "Bad Request", "bad request\n"));
      co_return;
    }
    const std::string_view method = text.substr(0, space);
    const std::string_view target = text.substr(space + 1, second - space - 1);
    if (method != "GET" && method != "HEAD") {
      co_await connection.write(response(405, "Method Not Allowed", "GET /metrics\n"));
      co_return;
    }
    if (target != "/metrics" && !target.starts_with("/metrics?")) {
      co_await connection.write(response(404, "Not Found", "GET /metrics\n"));
      co_return;
    }
    std::string answer = response(200, "OK", page(server.counters()));
    if (method == "HEAD") answer.erase(answer.find("\r\n\r\n") + 4);
    co_await connection.write(answer);
  }
};

}  // namespace

TERN_PLUGIN("metrics", "0.1.0", "protocol:metrics") {
  registrar.add_protocol(std::make_shared<MetricsProtocol>());
}
