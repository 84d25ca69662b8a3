// Test helpers for the sim platform's multi-process tests: a scratch sim
// directory, a fork()ed child that acts as another domain, and a pipe to
// pass small messages (grant refs, ports) between the two with a deadline.
// Test-only; each object is owned by one thread.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"

namespace vnvram::sim::testing {

// glibc 2.36's <sys/pidfd.h> lacks C linkage for C++; call the syscall.
inline int PidfdOpen(pid_t pid, unsigned flags) {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, flags));
}

inline constexpr Nanos kTestDeadline = std::chrono::seconds(10);

// A fresh directory under /tmp (short, for Unix socket paths), removed with
// everything in it on destruction.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/vnvsim-XXXXXX";
    const char* p = ::mkdtemp(tmpl);
    if (p != nullptr) path_ = p;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Waits until `fd` is readable or the deadline passes.
inline bool WaitReadable(int fd, const Deadline& deadline) {
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    const int n = ::poll(&p, 1, deadline.RemainingMillisForPoll());
    if (n > 0) return true;
    if (n == 0) return false;
    if (errno != EINTR) return false;
  }
}

// One direction of u32 messages between two processes.
class MessagePipe {
 public:
  MessagePipe() {
    if (::pipe2(fds_, O_CLOEXEC) != 0) fds_[0] = fds_[1] = -1;
  }
  ~MessagePipe() {
    for (int fd : fds_) {
      if (fd >= 0) ::close(fd);
    }
  }
  bool Send(const std::vector<uint32_t>& values) {
    std::vector<uint32_t> frame;
    frame.push_back(static_cast<uint32_t>(values.size()));
    frame.insert(frame.end(), values.begin(), values.end());
    const size_t bytes = frame.size() * sizeof(uint32_t);
    return ::write(fds_[1], frame.data(), bytes) == static_cast<ssize_t>(bytes);
  }
  // nullopt on timeout, EOF or error.
  std::optional<std::vector<uint32_t>> Receive(Nanos budget = kTestDeadline) {
    const Deadline deadline(SystemClock::Instance(), budget);
    uint32_t count = 0;
    if (!ReadExact(&count, sizeof count, deadline)) return std::nullopt;
    std::vector<uint32_t> values(count);
    if (count != 0 && !ReadExact(values.data(), count * sizeof(uint32_t), deadline)) {
      return std::nullopt;
    }
    return values;
  }
  std::optional<uint32_t> ReceiveOne(Nanos budget = kTestDeadline) {
    auto v = Receive(budget);
    if (!v || v->size() != 1) return std::nullopt;
    return (*v)[0];
  }

 private:
  bool ReadExact(void* out, size_t n, const Deadline& deadline) {
    auto* p = static_cast<char*>(out);
    while (n > 0) {
      if (!WaitReadable(fds_[0], deadline)) return false;
      const ssize_t r = ::read(fds_[0], p, n);
      if (r <= 0) {
        if (r < 0 && errno == EINTR) continue;
        return false;
      }
      p += r;
      n -= static_cast<size_t>(r);
    }
    return true;
  }
  int fds_[2];
};

// A fork()ed child running `body` (its return value is the exit code; the
// child never returns into the test framework).
class Child {
 public:
  explicit Child(const std::function<int()>& body) {
    pid_ = ::fork();
    if (pid_ == 0) {
      int code = 100;
      code = body();
      ::_exit(code);
    }
  }
  ~Child() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  bool started() const { return pid_ > 0; }
  // The child's wait status, or nullopt when it has not exited in time.
  std::optional<int> Wait(Nanos budget = kTestDeadline) {
    const Deadline deadline(SystemClock::Instance(), budget);
    const int pidfd = PidfdOpen(pid_, 0);
    if (pidfd < 0) return std::nullopt;
    const bool exited = WaitReadable(pidfd, deadline);
    ::close(pidfd);
    if (!exited) return std::nullopt;
    int status = 0;
    if (::waitpid(pid_, &status, 0) != pid_) return std::nullopt;
    reaped_ = true;
    return status;
  }
  // Exit code when the child exited normally, else -1 (or -2 on timeout).
  int ExitCode(Nanos budget = kTestDeadline) {
    auto s = Wait(budget);
    if (!s) return -2;
    return WIFEXITED(*s) ? WEXITSTATUS(*s) : -1;
  }

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
};

}  // namespace vnvram::sim::testing
