// Logging: spdlog underneath (Debian's libspdlog), one line per event on
// stderr (journald under systemd) or appended to a log file, each line
// prefixed with the program and, where one applies, the context it concerns
// ("dom 3 dev 0"). Init() or InitToFile() once at program start; the
// logging calls and Reopen() are thread-safe (spdlog's _mt sinks).
#pragma once

#include <spdlog/spdlog.h>

#include <string>
#include <string_view>

#include "common/result.h"

namespace vnvram::log {

enum class Level { kTrace, kDebug, kInfo, kWarn, kError, kOff };

// Sets the program name shown on every line and the minimum level.
void Init(std::string_view program, Level level = Level::kInfo);
// Like Init(), but the lines are appended to `path` (created 0640 when
// missing; see ReopenableFileSink). Fails when the file cannot be opened.
Status InitToFile(std::string_view program, Level level, const std::string& path);
// Reopens the log file of InitToFile() (logrotate renamed it: the next
// lines go to a new file at its path). Ok and nothing when logging to stderr.
Status Reopen();
void SetLevel(Level level);
// "trace", "debug", "info", "warn", "error", "off".
Result<Level> ParseLevel(std::string_view s);

// A logger that prefixes its lines with a fixed context, e.g. "dom 3 dev 0".
class Context {
 public:
  explicit Context(std::string prefix) : prefix_(std::move(prefix)) {}
  const std::string& prefix() const { return prefix_; }

  template <typename... Args>
  void Info(fmt::format_string<Args...> f, Args&&... a) const {
    spdlog::info("[{}] {}", prefix_, fmt::format(f, std::forward<Args>(a)...));
  }
  template <typename... Args>
  void Warn(fmt::format_string<Args...> f, Args&&... a) const {
    spdlog::warn("[{}] {}", prefix_, fmt::format(f, std::forward<Args>(a)...));
  }
  template <typename... Args>
  void Error(fmt::format_string<Args...> f, Args&&... a) const {
    spdlog::error("[{}] {}", prefix_, fmt::format(f, std::forward<Args>(a)...));
  }
  template <typename... Args>
  void Debug(fmt::format_string<Args...> f, Args&&... a) const {
    spdlog::debug("[{}] {}", prefix_, fmt::format(f, std::forward<Args>(a)...));
  }

 private:
  std::string prefix_;
};

}  // namespace vnvram::log
