#include "platform/sim/xenstored/testing/raw_xs_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/clock.h"
#include "platform/sim/store/xen_xs_wire.h"

namespace vnvram::sim::testing {

Result<std::unique_ptr<RawXsClient>> RawXsClient::Connect(const std::string& socket_path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof(addr.sun_path)) {
    return Status::InvalidArgument("socket path too long: " + socket_path);
  }
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  std::unique_ptr<RawXsClient> c(new RawXsClient());
  c->fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (c->fd_ < 0) return Status::FromErrno(errno, "socket");
  if (::connect(c->fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return Status::FromErrno(errno, "connect " + socket_path);
  }
  return c;
}

RawXsClient::~RawXsClient() {
  if (fd_ >= 0) ::close(fd_);
}

Status RawXsClient::SendBytes(std::string_view bytes) {
  size_t off = 0;
  while (off < bytes.size()) {
    const ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "send");
    }
    off += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status RawXsClient::Send(uint32_t type, std::string_view payload, uint32_t tx_id, uint32_t req_id) {
  return SendBytes(EncodeXsMessage(XsHeader{type, req_id, tx_id, 0}, payload));
}

Result<RawMessage> RawXsClient::Receive(std::chrono::milliseconds deadline) {
  const Deadline d(SystemClock::Instance(), deadline);
  for (;;) {
    if (in_.size() >= kXsHeaderSize) {
      uint8_t raw[kXsHeaderSize];
      std::memcpy(raw, in_.data(), kXsHeaderSize);
      const XsHeader h = DecodeXsHeader(raw);
      if (h.len > kXsPayloadMax) return Status::Corruption("daemon sent an oversize message");
      if (in_.size() >= kXsHeaderSize + h.len) {
        RawMessage m{h, in_.substr(kXsHeaderSize, h.len)};
        in_.erase(0, kXsHeaderSize + h.len);
        return m;
      }
    }
    pollfd p{fd_, POLLIN, 0};
    const int n = ::poll(&p, 1, d.RemainingMillisForPoll());
    if (n == 0) return Status::Timeout("no message from the daemon");
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "poll");
    }
    char buf[8192];
    const ssize_t got = ::recv(fd_, buf, sizeof(buf), 0);
    if (got == 0) return Status::Unavailable("daemon closed the connection");
    if (got < 0) {
      if (errno == EINTR) continue;
      if (errno == ECONNRESET) return Status::Unavailable("daemon reset the connection");
      return Status::FromErrno(errno, "recv");
    }
    in_.append(buf, static_cast<size_t>(got));
  }
}

Result<RawMessage> RawXsClient::Call(uint32_t type, std::string_view payload, uint32_t tx_id) {
  VNVRAM_RETURN_IF_ERROR(Send(type, payload, tx_id));
  std::string kept;
  for (;;) {
    VNVRAM_ASSIGN_OR_RETURN(RawMessage m, Receive());
    if (m.hdr.type != XS_WATCH_EVENT) {
      in_.insert(0, kept);
      return m;
    }
    kept += EncodeXsMessage(m.hdr, m.payload);
  }
}

bool RawXsClient::ClosedByPeer(std::chrono::milliseconds deadline) {
  const Deadline d(SystemClock::Instance(), deadline);
  while (!d.Expired()) {
    auto m = Receive(d.Remaining() > std::chrono::milliseconds(0)
                         ? std::chrono::duration_cast<std::chrono::milliseconds>(d.Remaining())
                         : std::chrono::milliseconds(0));
    if (!m.ok()) return m.status().code() == Code::kUnavailable;
  }
  return false;
}

std::string XsArgs(std::initializer_list<std::string_view> args) {
  std::string out;
  for (auto a : args) {
    out.append(a);
    out.push_back('\0');
  }
  return out;
}

}  // namespace vnvram::sim::testing
