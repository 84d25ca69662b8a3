// ChildProcess: test support for black-box tests: runs a program as a real
// child with pipes on stdin and stdout+stderr, reads its output line by
// line with a deadline (poll, never a sleep), writes to its stdin, kills it
// (SIGKILL, as a crash) and reaps it through a pidfd with a deadline. The
// destructor SIGKILLs and reaps a child still running. One object per
// thread; not thread-safe.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"

namespace vnvram::testing {

class ChildProcess {
 public:
  // argv[0] is an absolute path.
  static Result<std::unique_ptr<ChildProcess>> Spawn(const std::vector<std::string>& argv);
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  // The next output line (without '\n'); kTimeout after `deadline`,
  // kUnavailable at EOF.
  Result<std::string> NextLine(std::chrono::milliseconds deadline);
  // Reads lines until one starts with `prefix`; returns it.
  Result<std::string> WaitForLine(std::string_view prefix, std::chrono::milliseconds deadline);
  Status WriteStdin(std::string_view text);
  void CloseStdin();
  // SIGKILL (a crash).
  Status Kill();
  // Waits for exit; the exit code, or -signal when killed by a signal.
  Result<int> Wait(std::chrono::milliseconds deadline);
  // Everything read so far.
  const std::string& transcript() const { return transcript_; }

 private:
  ChildProcess() = default;
  pid_t pid_ = -1;
  int pidfd_ = -1;
  int out_fd_ = -1;
  int in_fd_ = -1;
  bool reaped_ = false;
  int status_ = 0;
  std::string buf_;
  std::string transcript_;
};

}  // namespace vnvram::testing
