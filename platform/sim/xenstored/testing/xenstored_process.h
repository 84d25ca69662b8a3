// XenstoredProcess: test support that runs build/bin/vnvram-xenstored as a
// real child process in a fresh temporary directory, waits for it through
// --ready-fd (an event, never a sleep), and stops it with SIGTERM in the
// destructor (SIGKILL after a deadline), removing the directory. Also
// RunProgram(), which runs a command with a deadline and captures output.
// One object per test; not thread-safe.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/parse.h"
#include "common/result.h"

namespace vnvram::sim::testing {

class XenstoredProcess {
 public:
  // Starts the daemon serving `domains` besides dom0.
  static Result<std::unique_ptr<XenstoredProcess>> Start(const std::vector<DomId>& domains = {});
  ~XenstoredProcess();

  const std::string& socket_dir() const { return socket_dir_; }
  std::string dom0_socket() const { return socket_dir_ + "/socket"; }
  std::string domain_socket(DomId d) const { return socket_dir_ + "/domain/" + std::to_string(d); }
  pid_t pid() const { return pid_; }
  // Whether the daemon is still running (reaps it if it exited).
  bool Alive();
  // SIGTERM and wait up to `deadline`; returns the exit status (as waitpid).
  Result<int> Stop(std::chrono::milliseconds deadline = std::chrono::seconds(10));
  // The daemon's stderr so far (for failure messages).
  std::string Log() const;

 private:
  XenstoredProcess() = default;
  std::string root_;        // temp dir
  std::string socket_dir_;  // root_/xs
  std::string log_path_;    // root_/daemon.log
  pid_t pid_ = -1;
  int pidfd_ = -1;
  bool reaped_ = false;
  int exit_status_ = 0;
};

struct ProgramResult {
  int exit_code = -1;  // -1 when killed by a signal or timed out
  bool timed_out = false;
  std::string out;  // stdout and stderr, interleaved
};

// Runs `argv` (argv[0] an absolute path) with `env` added to the current
// environment, kills it after `deadline`.
Result<ProgramResult> RunProgram(const std::vector<std::string>& argv,
                                 const std::map<std::string, std::string>& env,
                                 std::chrono::milliseconds deadline = std::chrono::seconds(10));

// A child whose output is read line by line while it runs
// (xenstore-watch). Killed in the destructor.
class LineReader {
 public:
  static Result<std::unique_ptr<LineReader>> Spawn(const std::vector<std::string>& argv,
                                                   const std::map<std::string, std::string>& env);
  ~LineReader();
  // The next line without its newline; kTimeout after `deadline`,
  // kUnavailable at EOF.
  Result<std::string> NextLine(std::chrono::milliseconds deadline = std::chrono::seconds(10));
  // Waits for exit; returns the exit code.
  Result<int> Wait(std::chrono::milliseconds deadline = std::chrono::seconds(10));

 private:
  LineReader() = default;
  pid_t pid_ = -1;
  int fd_ = -1;
  std::string buf_;
  bool reaped_ = false;
};

}  // namespace vnvram::sim::testing
