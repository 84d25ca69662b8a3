#include "common/log.h"

#include <spdlog/sinks/stdout_sinks.h>

#include <mutex>

#include "common/reopenable_file_sink.h"

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
// The file sink of InitToFile(), for Reopen().
std::mutex g_file_mu;
std::shared_ptr<ReopenableFileSink> g_file_sink;  // guarded by g_file_mu

void SetDefault(std::shared_ptr<spdlog::logger> logger, std::string_view program, Level level) {
  // Timestamp with microseconds, program, level, message: one line each.
  logger->set_pattern(std::string("%Y-%m-%dT%H:%M:%S.%f ") + std::string(program) + "[%P] %l: %v");
  logger->set_level(ToSpd(level));
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(std::move(logger));
}

std::string LoggerName(std::string_view program, const void* unique) {
  return std::string(program) + "-" + std::to_string(reinterpret_cast<uintptr_t>(unique));
}

}  // namespace

void Init(std::string_view program, Level level) {
  SetDefault(spdlog::stderr_logger_mt(LoggerName(program, &level)), program, level);
  std::lock_guard<std::mutex> lock(g_file_mu);
  g_file_sink.reset();
}

Status InitToFile(std::string_view program, Level level, const std::string& path) {
  VNVRAM_ASSIGN_OR_RETURN(auto sink, ReopenableFileSink::Open(path));
  SetDefault(std::make_shared<spdlog::logger>(LoggerName(program, &level), sink), program, level);
  std::lock_guard<std::mutex> lock(g_file_mu);
  g_file_sink = std::move(sink);
  return Status::Ok();
}

Status Reopen() {
  std::lock_guard<std::mutex> lock(g_file_mu);
  if (!g_file_sink) return Status::Ok();
  return g_file_sink->Reopen();
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
