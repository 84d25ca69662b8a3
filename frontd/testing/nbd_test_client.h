// NbdTestClient: test support: a hand-driven NBD client over one blocking
// socket, able to speak the protocol correctly (negotiate with GO, READ,
// WRITE, FLUSH, ...) and to send anything else byte by byte (hostile
// clients). Every receive has a timeout (SO_RCVTIMEO), so a test never
// hangs on a server that does not answer. One thread; not thread-safe.
#pragma once

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/endian.h"
#include "frontd/nbd_protocol.h"

namespace vnvram::frontd::testing {

class NbdTestClient {
 public:
  static constexpr int kTransportError = -1;

  // Takes ownership of a connected stream socket.
  explicit NbdTestClient(int fd, std::chrono::milliseconds timeout = std::chrono::seconds(20))
      : fd_(fd) {
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
    (void)::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    (void)::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }
  ~NbdTestClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  NbdTestClient(const NbdTestClient&) = delete;
  NbdTestClient& operator=(const NbdTestClient&) = delete;

  // nullptr when the connect fails.
  static std::unique_ptr<NbdTestClient> ConnectUnix(
      const std::string& path, std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return nullptr;
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (path.size() >= sizeof(a.sun_path)) {
      ::close(fd);
      return nullptr;
    }
    std::memcpy(a.sun_path, path.data(), path.size());
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
      ::close(fd);
      return nullptr;
    }
    return std::make_unique<NbdTestClient>(fd, timeout);
  }

  int fd() const { return fd_; }

  bool Send(std::span<const std::byte> b) {
    size_t sent = 0;
    while (sent < b.size()) {
      const ssize_t n = ::send(fd_, b.data() + sent, b.size() - sent, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      sent += static_cast<size_t>(n);
    }
    return true;
  }
  bool Recv(std::span<std::byte> out) {
    size_t got = 0;
    while (got < out.size()) {
      const ssize_t n = ::recv(fd_, out.data() + got, out.size() - got, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      got += static_cast<size_t>(n);
    }
    return true;
  }
  // True when the server closed the connection (EOF or reset) before the
  // receive timeout; bytes still in flight are dropped.
  bool ClosedByServer() {
    std::byte sink[4096];
    for (;;) {
      const ssize_t n = ::recv(fd_, sink, sizeof sink, 0);
      if (n > 0) continue;
      if (n < 0 && errno == EINTR) continue;
      return n == 0 || errno == ECONNRESET || errno == EPIPE;
    }
  }
  void ShutdownWrite() { (void)::shutdown(fd_, SHUT_WR); }

  // ---- Negotiation ----
  bool ReadGreeting(uint16_t* flags) {
    std::byte g[nbd::kGreetingSize];
    if (!Recv(g)) return false;
    if (LoadBE<uint64_t>(g) != nbd::kInitMagic || LoadBE<uint64_t>(g + 8) != nbd::kOptionMagic) {
      return false;
    }
    *flags = LoadBE<uint16_t>(g + 16);
    return true;
  }
  bool SendClientFlags(uint32_t flags) {
    std::byte b[4];
    StoreBE<uint32_t>(b, flags);
    return Send(b);
  }
  bool SendOption(uint32_t option, std::span<const std::byte> data,
                  uint64_t magic = nbd::kOptionMagic) {
    std::vector<std::byte> b(16);
    StoreBE<uint64_t>(b.data(), magic);
    StoreBE<uint32_t>(b.data() + 8, option);
    StoreBE<uint32_t>(b.data() + 12, static_cast<uint32_t>(data.size()));
    b.insert(b.end(), data.begin(), data.end());
    return Send(b);
  }
  struct OptionReply {
    uint32_t option = 0;
    uint32_t type = 0;
    std::vector<std::byte> data;
  };
  bool ReadOptionReply(OptionReply* r) {
    std::byte h[nbd::kOptionReplyHeaderSize];
    if (!Recv(h) || LoadBE<uint64_t>(h) != nbd::kOptionReplyMagic) return false;
    r->option = LoadBE<uint32_t>(h + 8);
    r->type = LoadBE<uint32_t>(h + 12);
    const uint32_t len = LoadBE<uint32_t>(h + 16);
    if (len > (1u << 20)) return false;
    r->data.assign(len, std::byte{0});
    return Recv(r->data);
  }
  // GO/INFO data: name, items.
  static std::vector<std::byte> InfoData(const std::string& name,
                                         const std::vector<uint16_t>& items) {
    std::vector<std::byte> d(4 + name.size() + 2 + 2 * items.size());
    StoreBE<uint32_t>(d.data(), static_cast<uint32_t>(name.size()));
    std::memcpy(d.data() + 4, name.data(), name.size());
    StoreBE<uint16_t>(d.data() + 4 + name.size(), static_cast<uint16_t>(items.size()));
    for (size_t i = 0; i < items.size(); ++i) {
      StoreBE<uint16_t>(d.data() + 6 + name.size() + 2 * i, items[i]);
    }
    return d;
  }
  // Greeting, fixed newstyle + no zeroes, GO `name`: the export's size and
  // transmission flags. False on any surprise.
  bool Go(const std::string& name, uint64_t* size, uint16_t* flags) {
    uint16_t hs = 0;
    if (!ReadGreeting(&hs) ||
        !SendClientFlags(nbd::kClientFlagFixedNewstyle | nbd::kClientFlagNoZeroes) ||
        !SendOption(nbd::kOptGo, InfoData(name, {}))) {
      return false;
    }
    for (;;) {
      OptionReply r;
      if (!ReadOptionReply(&r) || r.option != nbd::kOptGo) return false;
      if (r.type == nbd::kRepAck) return true;
      if (r.type != nbd::kRepInfo || r.data.size() < 2) return false;
      if (LoadBE<uint16_t>(r.data.data()) == nbd::kInfoExport && r.data.size() == 12) {
        *size = LoadBE<uint64_t>(r.data.data() + 2);
        *flags = LoadBE<uint16_t>(r.data.data() + 10);
      }
    }
  }

  // ---- Transmission ----
  bool SendRequest(uint16_t type, uint16_t flags, uint64_t cookie, uint64_t offset, uint32_t length,
                   std::span<const std::byte> payload = {}, uint32_t magic = nbd::kRequestMagic) {
    std::vector<std::byte> b(nbd::kRequestSize);
    StoreBE<uint32_t>(b.data(), magic);
    StoreBE<uint16_t>(b.data() + 4, flags);
    StoreBE<uint16_t>(b.data() + 6, type);
    StoreBE<uint64_t>(b.data() + 8, cookie);
    StoreBE<uint64_t>(b.data() + 16, offset);
    StoreBE<uint32_t>(b.data() + 24, length);
    b.insert(b.end(), payload.begin(), payload.end());
    return Send(b);
  }
  // The error of a simple reply, or kTransportError; checks the cookie.
  int64_t ReadReply(uint64_t cookie) {
    std::byte h[nbd::kSimpleReplySize];
    if (!Recv(h) || LoadBE<uint32_t>(h) != nbd::kSimpleReplyMagic) return kTransportError;
    if (LoadBE<uint64_t>(h + 8) != cookie) return kTransportError;
    return LoadBE<uint32_t>(h + 4);
  }
  int64_t Write(uint64_t offset, std::span<const std::byte> data, bool fua = false) {
    const uint64_t c = ++cookie_;
    if (!SendRequest(nbd::kCmdWrite, fua ? nbd::kCmdFlagFua : 0, c, offset,
                     static_cast<uint32_t>(data.size()), data)) {
      return kTransportError;
    }
    return ReadReply(c);
  }
  int64_t Read(uint64_t offset, std::span<std::byte> out) {
    const uint64_t c = ++cookie_;
    if (!SendRequest(nbd::kCmdRead, 0, c, offset, static_cast<uint32_t>(out.size()))) {
      return kTransportError;
    }
    const int64_t e = ReadReply(c);
    if (e != 0) return e;
    return Recv(out) ? 0 : kTransportError;
  }
  int64_t Command(uint16_t type, uint16_t flags = 0, uint64_t offset = 0, uint32_t length = 0) {
    const uint64_t c = ++cookie_;
    if (!SendRequest(type, flags, c, offset, length)) return kTransportError;
    return ReadReply(c);
  }
  int64_t Flush() { return Command(nbd::kCmdFlush); }
  bool Disconnect() { return SendRequest(nbd::kCmdDisc, 0, ++cookie_, 0, 0); }

 private:
  int fd_;
  uint64_t cookie_ = 0;
};

}  // namespace vnvram::frontd::testing
