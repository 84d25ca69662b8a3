#include "tests/child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/clock.h"

namespace vnvram::testing {

Result<std::unique_ptr<ChildProcess>> ChildProcess::Spawn(const std::vector<std::string>& argv) {
  if (argv.empty()) return Status::InvalidArgument("empty argv");
  int out[2], in[2];
  if (pipe2(out, O_CLOEXEC) != 0) return Status::FromErrno(errno, "pipe2");
  if (pipe2(in, O_CLOEXEC) != 0) {
    close(out[0]);
    close(out[1]);
    return Status::FromErrno(errno, "pipe2");
  }
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) return Status::FromErrno(errno, "fork");
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(out[1], 2);
    execv(args[0], args.data());
    _exit(127);
  }
  close(out[1]);
  close(in[0]);
  std::unique_ptr<ChildProcess> c(new ChildProcess());
  c->pid_ = pid;
  c->out_fd_ = out[0];
  c->in_fd_ = in[1];
  c->pidfd_ = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (c->pidfd_ < 0) return Status::FromErrno(errno, "pidfd_open");
  return c;
}

ChildProcess::~ChildProcess() {
  if (!reaped_ && pid_ > 0) {
    kill(pid_, SIGKILL);
    (void)Wait(std::chrono::seconds(10));
  }
  for (int fd : {out_fd_, in_fd_, pidfd_}) {
    if (fd >= 0) close(fd);
  }
}

Result<std::string> ChildProcess::NextLine(std::chrono::milliseconds deadline) {
  Deadline dl(SystemClock::Instance(), deadline);
  for (;;) {
    const size_t nl = buf_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buf_.substr(0, nl);
      buf_.erase(0, nl + 1);
      return line;
    }
    if (out_fd_ < 0) return Status::Unavailable("child output closed");
    pollfd pfd{out_fd_, POLLIN, 0};
    const int n = poll(&pfd, 1, dl.RemainingMillisForPoll());
    if (n < 0 && errno != EINTR) return Status::FromErrno(errno, "poll");
    if (n == 0) return Status::Timeout("no line from the child in time; so far:\n" + transcript_);
    char chunk[4096];
    const ssize_t r = read(out_fd_, chunk, sizeof chunk);
    if (r < 0 && errno != EINTR) return Status::FromErrno(errno, "read");
    if (r == 0) {
      close(out_fd_);
      out_fd_ = -1;
      if (!buf_.empty()) {
        std::string line = std::move(buf_);
        buf_.clear();
        return line;
      }
      return Status::Unavailable("child output closed");
    }
    if (r > 0) {
      buf_.append(chunk, static_cast<size_t>(r));
      transcript_.append(chunk, static_cast<size_t>(r));
    }
  }
}

Result<std::string> ChildProcess::WaitForLine(std::string_view prefix,
                                              std::chrono::milliseconds deadline) {
  Deadline dl(SystemClock::Instance(), deadline);
  for (;;) {
    auto line = NextLine(std::chrono::duration_cast<std::chrono::milliseconds>(dl.Remaining()));
    if (!line.ok()) {
      return Status(line.status().code(), "waiting for '" + std::string(prefix) +
                                              "': " + line.status().message() + "\ntranscript:\n" +
                                              transcript_);
    }
    if (line->rfind(prefix, 0) == 0) return line;
  }
}

Status ChildProcess::WriteStdin(std::string_view text) {
  if (in_fd_ < 0) return Status::FailedPrecondition("stdin closed");
  // A child that has exited closed its end: the write fails with EPIPE
  // and raises SIGPIPE, which must not kill the test. Block it on this
  // thread for the write and take away the one the write raised.
  sigset_t pipe_only, old;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_only, &old);
  Status result;
  while (!text.empty()) {
    const ssize_t w = write(in_fd_, text.data(), text.size());
    if (w < 0) {
      if (errno == EINTR) continue;
      result = Status::FromErrno(errno, "write to child");
      if (errno == EPIPE) {
        const timespec none{0, 0};
        while (sigtimedwait(&pipe_only, nullptr, &none) < 0 && errno == EINTR) {
        }
      }
      break;
    }
    text.remove_prefix(static_cast<size_t>(w));
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return result;
}

void ChildProcess::CloseStdin() {
  if (in_fd_ >= 0) close(in_fd_);
  in_fd_ = -1;
}

Status ChildProcess::Kill() {
  if (reaped_) return Status::Ok();
  if (kill(pid_, SIGKILL) != 0) return Status::FromErrno(errno, "kill");
  return Status::Ok();
}

Result<int> ChildProcess::Wait(std::chrono::milliseconds deadline) {
  if (!reaped_) {
    Deadline dl(SystemClock::Instance(), deadline);
    for (;;) {
      pollfd pfd{pidfd_, POLLIN, 0};
      const int n = poll(&pfd, 1, dl.RemainingMillisForPoll());
      if (n < 0 && errno != EINTR) return Status::FromErrno(errno, "poll pidfd");
      if (n > 0) break;
      if (dl.Expired()) return Status::Timeout("child did not exit in time");
    }
    if (waitpid(pid_, &status_, 0) != pid_) return Status::FromErrno(errno, "waitpid");
    reaped_ = true;
    // Collect whatever output is left (for transcripts).
    while (out_fd_ >= 0) {
      auto l = NextLine(std::chrono::milliseconds(1000));
      if (!l.ok()) break;
    }
  }
  if (WIFEXITED(status_)) return WEXITSTATUS(status_);
  if (WIFSIGNALED(status_)) return -WTERMSIG(status_);
  return -1;
}

}  // namespace vnvram::testing
