#include "frontd/client_socket.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <string>

namespace vnvram::frontd {

ClientSocket::ClientSocket(int fd, int stop_fd, std::chrono::milliseconds stop_grace)
    : fd_(fd), stop_fd_(stop_fd), stop_grace_(stop_grace) {}

Status ClientSocket::Wait(short events, const Deadline* deadline) {
  for (;;) {
    const Deadline* limit = deadline;
    if (stop_seen_.has_value()) {
      if (deadline == nullptr) return Status::Aborted("the daemon is stopping");
      if (stop_seen_->Remaining() < deadline->Remaining()) limit = &*stop_seen_;
    }
    if (limit != nullptr && limit->Expired()) {
      return Status::Timeout(limit == deadline ? "the client's frame timed out"
                                               : "the daemon stopped (grace period over)");
    }
    std::array<pollfd, 2> fds{pollfd{fd_.get(), events, 0}, pollfd{stop_fd_, POLLIN, 0}};
    const nfds_t nfds = (stop_fd_ >= 0 && !stop_seen_.has_value()) ? 2 : 1;
    const int timeout = limit == nullptr ? -1 : limit->RemainingMillisForPoll();
    const int n = ::poll(fds.data(), nfds, timeout);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "poll on the client socket");
    }
    if (nfds == 2 && (fds[1].revents & POLLIN) != 0) {
      stop_seen_.emplace(SystemClock::Instance(), stop_grace_);
      // A request that arrived with the stop is still taken; none after.
      if (fds[0].revents != 0) return Status::Ok();
      continue;
    }
    // POLLHUP and POLLERR too: the next recv/send reports what happened.
    if (fds[0].revents != 0) return Status::Ok();
  }
}

Status ClientSocket::WaitIdle() {
  return Wait(POLLIN, nullptr);
}

Status ClientSocket::ReadExact(std::span<std::byte> dst, const Deadline& deadline,
                               size_t* received) {
  size_t got = 0;
  if (received != nullptr) *received = 0;
  while (got < dst.size()) {
    const ssize_t n = ::recv(fd_.get(), dst.data() + got, dst.size() - got, 0);
    if (n > 0) {
      got += static_cast<size_t>(n);
      if (received != nullptr) *received = got;
      continue;
    }
    const auto progress = [&] {
      return std::to_string(got) + " of " + std::to_string(dst.size()) + " bytes";
    };
    if (n == 0) return Status::Unavailable("connection closed after " + progress());
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (Status s = Wait(POLLIN, &deadline); !s.ok()) {
        return s.WithContext("reading " + progress());
      }
      continue;
    }
    return Status::FromErrno(errno, "recv from the client");
  }
  return Status::Ok();
}

Status ClientSocket::Discard(uint64_t length, const Deadline& deadline) {
  std::array<std::byte, 65536> sink{};
  while (length > 0) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(length, sink.size()));
    VNVRAM_RETURN_IF_ERROR(ReadExact(std::span(sink.data(), n), deadline));
    length -= n;
  }
  return Status::Ok();
}

Status ClientSocket::WriteAll(std::span<const std::byte> src, const Deadline& deadline) {
  size_t sent = 0;
  while (sent < src.size()) {
    const ssize_t n = ::send(fd_.get(), src.data() + sent, src.size() - sent, MSG_NOSIGNAL);
    if (n >= 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (Status s = Wait(POLLOUT, &deadline); !s.ok()) {
        return s.WithContext("writing " + std::to_string(sent) + " of " +
                             std::to_string(src.size()) + " bytes");
      }
      continue;
    }
    return Status::FromErrno(errno, "send to the client");
  }
  return Status::Ok();
}

void ClientSocket::Shutdown() {
  if (fd_.get() >= 0) (void)::shutdown(fd_.get(), SHUT_RDWR);
}

}  // namespace vnvram::frontd
