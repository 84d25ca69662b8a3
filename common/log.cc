#include "common/log.h"

#include <spdlog/sinks/stdout_sinks.h>

namespace vnvram::log {

namespace {
spdlog::level::level_enum ToSpd(Level level) {
  switch (level) {
    case Level::kTrace: return spdlog::level::trace;
    case Level::kDebug: return spdlog::level::debug;
    case Level::kInfo: return spdlog::level::info;
    case Level::kWarn: return spdlog::level::warn;
    case Level::kError: return spdlog::level::err;
    case Level::kOff: return spdlog::level::off;
  }
  return spdlog::level::info;
}
}  // namespace

void Init(std::string_view program, Level level) {
  auto logger = spdlog::stderr_logger_mt(std::string(program) + "-" +
                                         std::to_string(reinterpret_cast<uintptr_t>(&level)));
  // Timestamp with microseconds, program, level, message: one line each.
  logger->set_pattern(std::string("%Y-%m-%dT%H:%M:%S.%f ") + std::string(program) + "[%P] %l: %v");
  logger->set_level(ToSpd(level));
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(std::move(logger));
}

void SetLevel(Level level) {
  spdlog::set_level(ToSpd(level));
}

Result<Level> ParseLevel(std::string_view s) {
  if (s == "trace") return Level::kTrace;
  if (s == "debug") return Level::kDebug;
  if (s == "info") return Level::kInfo;
  if (s == "warn") return Level::kWarn;
  if (s == "error") return Level::kError;
  if (s == "off") return Level::kOff;
  return Status::InvalidArgument("log level '" + std::string(s) +
                                 "': use trace, debug, info, warn, error or off");
}

}  // namespace vnvram::log
