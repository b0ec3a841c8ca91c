#include "log/logging.hpp"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <nlohmann/json.hpp>

namespace tern::logging {
namespace {

// One JSON object per line: {"time": "...", "level": "info", "message": "..."}.
class JsonLineFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    nlohmann::json line;
    auto since_epoch = msg.time.time_since_epoch();
    line["time"] = std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch).count() / 1000.0;
    line["level"] =
        std::string(spdlog::level::to_string_view(msg.level).data(), spdlog::level::to_string_view(msg.level).size());
    line["message"] = std::string(msg.payload.data(), msg.payload.size());
    std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    dest.append(text.data(), text.data() + text.size());
    dest.push_back('\n');
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<JsonLineFormatter>(); }
};

spdlog::level::level_enum to_spdlog(sdk::LogLevel level) {
  switch (level) {
    case sdk::LogLevel::debug: return spdlog::level::debug;
    case sdk::LogLevel::info: return spdlog::level::info;
    case sdk::LogLevel::warn: return spdlog::level::warn;
    case sdk::LogLevel::error: return spdlog::level::err;
  }
  return spdlog::level::info;
}

}  // namespace

void configure(const config::LogSettings& settings) {
  spdlog::sink_ptr sink;
  if (settings.file.empty()) {
    sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  } else {
    sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(settings.file.string());
  }
  auto logger = std::make_shared<spdlog::logger>("tern", sink);
  if (settings.format == "json") {
    logger->set_formatter(std::make_unique<JsonLineFormatter>());
  } else {
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %l %v");
  }
  logger->set_level(spdlog::level::from_str(settings.level));
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(std::move(logger));
}

void to_standard_error() {
  spdlog::set_default_logger(
      std::make_shared<spdlog::logger>("tern", std::make_shared<spdlog::sinks::stderr_sink_mt>()));
}

void NamedLog::write(sdk::LogLevel level, std::string_view message) {
  spdlog::log(to_spdlog(level), "[{}] {}", name_, message);
}

}  // namespace tern::logging
