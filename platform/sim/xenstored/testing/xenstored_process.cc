#include "platform/sim/xenstored/testing/xenstored_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/clock.h"

#ifndef VNVRAM_BIN_DIR
#error "VNVRAM_BIN_DIR must name the directory holding vnvram-xenstored"
#endif

namespace vnvram::sim::testing {

namespace {

int PidfdOpen(pid_t pid) {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

// Waits until `fd` is readable or the deadline passes; true when readable.
bool WaitReadable(int fd, const Deadline& d) {
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    const int n = ::poll(&p, 1, d.RemainingMillisForPoll());
    if (n > 0) return true;
    if (n == 0) return false;
    if (errno != EINTR) return false;
  }
}

// Builds envp: the current environment with `extra` set over it.
std::vector<std::string> MakeEnv(const std::map<std::string, std::string>& extra) {
  std::vector<std::string> out;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string kv(*e);
    const std::string key = kv.substr(0, kv.find('='));
    if (extra.count(key) == 0) out.push_back(kv);
  }
  for (const auto& [k, v] : extra) {
    std::string kv = k;
    kv += '=';
    kv += v;
    out.push_back(std::move(kv));
  }
  return out;
}

std::vector<char*> CStrings(std::vector<std::string>& v) {
  std::vector<char*> out;
  out.reserve(v.size() + 1);
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// Forks and execs `argv` with stdout+stderr on `out_fd` (or /dev/null).
Result<pid_t> Spawn(std::vector<std::string> argv, const std::map<std::string, std::string>& env,
                    int out_fd, int keep_fd = -1) {
  std::vector<std::string> envs = MakeEnv(env);
  std::vector<char*> cargv = CStrings(argv);
  std::vector<char*> cenv = CStrings(envs);
  const pid_t pid = ::fork();
  if (pid < 0) return Status::FromErrno(errno, "fork");
  if (pid == 0) {
    // Child: only async-signal-safe calls from here.
    const int devnull = ::open("/dev/null", O_RDWR);
    ::dup2(devnull, 0);
    ::dup2(out_fd >= 0 ? out_fd : devnull, 1);
    ::dup2(out_fd >= 0 ? out_fd : devnull, 2);
    if (keep_fd >= 0) {
      const int flags = ::fcntl(keep_fd, F_GETFD);
      ::fcntl(keep_fd, F_SETFD, flags & ~FD_CLOEXEC);
    }
    ::execve(cargv[0], cargv.data(), cenv.data());
    ::_exit(127);
  }
  return pid;
}

Result<int> WaitPid(pid_t pid, std::chrono::milliseconds deadline) {
  const int pidfd = PidfdOpen(pid);
  if (pidfd >= 0) {
    WaitReadable(pidfd, Deadline(SystemClock::Instance(), deadline));
    ::close(pidfd);
  }
  int status = 0;
  const pid_t r = ::waitpid(pid, &status, pidfd >= 0 ? WNOHANG : 0);
  if (r == pid) return status;
  if (r == 0) return Status::Timeout("process " + std::to_string(pid) + " did not exit");
  return Status::FromErrno(errno, "waitpid");
}

}  // namespace

Result<std::unique_ptr<XenstoredProcess>> XenstoredProcess::Start(
    const std::vector<DomId>& domains) {
  std::unique_ptr<XenstoredProcess> p(new XenstoredProcess());
  char tmpl[] = "/tmp/vnvram-xs-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return Status::FromErrno(errno, "mkdtemp");
  p->root_ = tmpl;
  p->socket_dir_ = p->root_ + "/xs";
  p->log_path_ = p->root_ + "/daemon.log";

  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) return Status::FromErrno(errno, "pipe2");
  const int log_fd = ::open(p->log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    ::close(ready[0]);
    ::close(ready[1]);
    return Status::FromErrno(errno, "open " + p->log_path_);
  }
  std::vector<std::string> argv{std::string(VNVRAM_BIN_DIR) + "/vnvram-xenstored",
                                "--socket-dir",
                                p->socket_dir_,
                                "--ready-fd",
                                std::to_string(ready[1]),
                                "--log-level",
                                "debug"};
  for (DomId d : domains) {
    argv.push_back("--domain");
    argv.push_back(std::to_string(d));
  }
  auto pid = Spawn(argv, {}, log_fd, ready[1]);
  ::close(log_fd);
  ::close(ready[1]);
  if (!pid.ok()) {
    ::close(ready[0]);
    return pid.status();
  }
  p->pid_ = *pid;
  p->pidfd_ = PidfdOpen(p->pid_);

  const Deadline d(SystemClock::Instance(), std::chrono::seconds(10));
  char byte = 0;
  const bool readable = WaitReadable(ready[0], d);
  const ssize_t got = readable ? ::read(ready[0], &byte, 1) : -1;
  ::close(ready[0]);
  if (got != 1) {
    const std::string log = p->Log();
    return Status::Unavailable(std::string(readable ? "vnvram-xenstored exited before ready"
                                                    : "vnvram-xenstored not ready in 10 s") +
                               "; its log:\n" + log);
  }
  return p;
}

bool XenstoredProcess::Alive() {
  if (reaped_) return false;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) == pid_) {
    reaped_ = true;
    exit_status_ = status;
    return false;
  }
  return true;
}

Result<int> XenstoredProcess::Stop(std::chrono::milliseconds deadline) {
  if (!reaped_) {
    ::kill(pid_, SIGTERM);
    auto st = WaitPid(pid_, deadline);
    if (!st.ok()) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      reaped_ = true;
      return st.status();
    }
    reaped_ = true;
    exit_status_ = *st;
  }
  return exit_status_;
}

std::string XenstoredProcess::Log() const {
  std::ifstream f(log_path_);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

XenstoredProcess::~XenstoredProcess() {
  if (pid_ > 0) (void)Stop();
  if (pidfd_ >= 0) ::close(pidfd_);
  if (!root_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }
}

Result<ProgramResult> RunProgram(const std::vector<std::string>& argv,
                                 const std::map<std::string, std::string>& env,
                                 std::chrono::milliseconds deadline) {
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return Status::FromErrno(errno, "pipe2");
  auto pid = Spawn(argv, env, out[1]);
  ::close(out[1]);
  if (!pid.ok()) {
    ::close(out[0]);
    return pid.status();
  }
  ProgramResult r;
  const Deadline d(SystemClock::Instance(), deadline);
  char buf[4096];
  for (;;) {
    if (!WaitReadable(out[0], d)) {
      r.timed_out = true;
      ::kill(*pid, SIGKILL);
      break;
    }
    const ssize_t n = ::read(out[0], buf, sizeof(buf));
    if (n > 0) {
      r.out.append(buf, static_cast<size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  ::close(out[0]);
  int status = 0;
  ::waitpid(*pid, &status, 0);
  r.exit_code = (!r.timed_out && WIFEXITED(status)) ? WEXITSTATUS(status) : -1;
  return r;
}

Result<std::unique_ptr<LineReader>> LineReader::Spawn(
    const std::vector<std::string>& argv, const std::map<std::string, std::string>& env) {
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return Status::FromErrno(errno, "pipe2");
  auto pid = testing::Spawn(argv, env, out[1]);
  ::close(out[1]);
  if (!pid.ok()) {
    ::close(out[0]);
    return pid.status();
  }
  std::unique_ptr<LineReader> r(new LineReader());
  r->pid_ = *pid;
  r->fd_ = out[0];
  return r;
}

Result<std::string> LineReader::NextLine(std::chrono::milliseconds deadline) {
  const Deadline d(SystemClock::Instance(), deadline);
  for (;;) {
    const size_t nl = buf_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buf_.substr(0, nl);
      buf_.erase(0, nl + 1);
      return line;
    }
    if (!WaitReadable(fd_, d)) return Status::Timeout("no line within the deadline");
    char buf[4096];
    const ssize_t n = ::read(fd_, buf, sizeof(buf));
    if (n > 0) {
      buf_.append(buf, static_cast<size_t>(n));
    } else if (n == 0) {
      return Status::Unavailable("end of output; partial: " + buf_);
    } else if (errno != EINTR) {
      return Status::FromErrno(errno, "read");
    }
  }
}

Result<int> LineReader::Wait(std::chrono::milliseconds deadline) {
  auto st = WaitPid(pid_, deadline);
  if (!st.ok()) return st.status();
  reaped_ = true;
  return WIFEXITED(*st) ? WEXITSTATUS(*st) : -1;
}

LineReader::~LineReader() {
  if (!reaped_ && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace vnvram::sim::testing
