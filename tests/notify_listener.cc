#include "tests/notify_listener.h"

#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace vnvram::testing {

Result<std::unique_ptr<NotifyListener>> NotifyListener::Create() {
  std::unique_ptr<NotifyListener> l(new NotifyListener());
  char tmpl[] = "/tmp/vnvram-notify-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return Status::FromErrno(errno, "mkdtemp");
  l->dir_ = tmpl;
  l->path_ = l->dir_ + "/notify";
  l->fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (l->fd_ < 0) return Status::FromErrno(errno, "socket");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (l->path_.size() >= sizeof(addr.sun_path)) return Status::InvalidArgument("path too long");
  std::memcpy(addr.sun_path, l->path_.c_str(), l->path_.size() + 1);
  if (::bind(l->fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    return Status::FromErrno(errno, "bind " + l->path_);
  }
  return l;
}

NotifyListener::~NotifyListener() {
  if (fd_ >= 0) ::close(fd_);
  if (!path_.empty()) ::unlink(path_.c_str());
  if (!dir_.empty()) ::rmdir(dir_.c_str());
}

Result<std::string> NotifyListener::Next(std::chrono::milliseconds deadline) {
  const auto end = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        end - std::chrono::steady_clock::now());
    if (left.count() < 0) return Status::Timeout("no notification message in time");
    pollfd p{fd_, POLLIN, 0};
    const int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno(errno, "poll");
    if (n == 0) return Status::Timeout("no notification message in time");
    char buf[4096];
    const ssize_t got = ::recv(fd_, buf, sizeof(buf), 0);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return Status::FromErrno(errno, "recv");
    std::string msg(buf, static_cast<size_t>(got));
    transcript_ += msg + "\n--\n";
    return msg;
  }
}

Result<std::string> NotifyListener::WaitFor(std::string_view assignment,
                                            std::chrono::milliseconds deadline) {
  const auto end = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        end - std::chrono::steady_clock::now());
    VNVRAM_ASSIGN_OR_RETURN(std::string msg, Next(std::max(left, std::chrono::milliseconds(0))));
    size_t start = 0;
    while (start <= msg.size()) {
      const size_t nl = msg.find('\n', start);
      const size_t stop = nl == std::string::npos ? msg.size() : nl;
      if (std::string_view(msg).substr(start, stop - start) == assignment) return msg;
      if (nl == std::string::npos) break;
      start = nl + 1;
    }
  }
}

}  // namespace vnvram::testing
