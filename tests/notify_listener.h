// NotifyListener: test support standing in for systemd's notification
// socket: a Unix datagram socket (in a fresh temporary directory) whose path
// a daemon gets as NOTIFY_SOCKET, and the "KEY=value" messages it receives,
// read with a deadline (poll, never a sleep). One object per thread; not
// thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"

namespace vnvram::testing {

class NotifyListener {
 public:
  static Result<std::unique_ptr<NotifyListener>> Create();
  ~NotifyListener();
  NotifyListener(const NotifyListener&) = delete;
  NotifyListener& operator=(const NotifyListener&) = delete;

  const std::string& path() const { return path_; }
  // "NOTIFY_SOCKET=<path>", for a child's environment.
  std::string EnvAssignment() const { return "NOTIFY_SOCKET=" + path_; }
  // The next message; kTimeout when none arrives within `deadline`.
  Result<std::string> Next(std::chrono::milliseconds deadline);
  // Reads messages until one holds the line `assignment` (e.g. "READY=1")
  // and returns that message; every message read is kept in transcript().
  Result<std::string> WaitFor(std::string_view assignment, std::chrono::milliseconds deadline);
  const std::string& transcript() const { return transcript_; }

 private:
  NotifyListener() = default;
  std::string dir_;
  std::string path_;
  int fd_ = -1;
  std::string transcript_;
};

}  // namespace vnvram::testing
