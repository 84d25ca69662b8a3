#include "tests/fault/link_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <deque>
#include <list>
#include <vector>

#include "common/clock.h"

namespace vnvram::testing {
namespace {

// Bytes held per direction before the proxy stops reading (TCP's own flow
// control then pushes back on the sender, as a full receive window would).
constexpr size_t kMaxHeld = 4u << 20;

struct Chunk {
  Nanos due;
  std::vector<char> bytes;
  size_t sent = 0;
};

// One direction of a connection: read from `from`, write to `to`.
struct Pipe {
  std::deque<Chunk> queue;
  size_t held = 0;
};

struct Conn {
  int down = -1;  // accepted from the dialling host
  int up = -1;    // to the upstream host; -1 until connected
  Pipe to_up, to_down;
  bool dead = false;
};

int ConnectUpstream(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  // Loopback connects complete or fail at once; EINPROGRESS is still
  // possible, and a later failure shows as an error on the first write.
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 && errno != EINPROGRESS) {
    ::close(fd);
    return -1;
  }
  const int one = 1;
  (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

// Reads what `fd` has into `p` (due now + delay); false on EOF or error.
bool ReadInto(int fd, Pipe& p, Nanos due) {
  for (;;) {
    if (p.held >= kMaxHeld) return true;
    std::vector<char> buf(64u << 10);
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n > 0) {
      buf.resize(static_cast<size_t>(n));
      p.held += buf.size();
      p.queue.push_back(Chunk{due, std::move(buf), 0});
      continue;
    }
    if (n == 0) return false;
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
  }
}

// Writes the due chunks of `p` to `fd`; false on error.
bool WriteFrom(int fd, Pipe& p, Nanos now) {
  while (!p.queue.empty() && p.queue.front().due <= now) {
    Chunk& c = p.queue.front();
    const ssize_t n = ::send(fd, c.bytes.data() + c.sent, c.bytes.size() - c.sent, MSG_NOSIGNAL);
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    c.sent += static_cast<size_t>(n);
    if (c.sent < c.bytes.size()) return true;
    p.held -= c.bytes.size();
    p.queue.pop_front();
  }
  return true;
}

}  // namespace

Result<std::unique_ptr<LinkProxy>> LinkProxy::Start(uint16_t upstream_port) {
  std::unique_ptr<LinkProxy> p(new LinkProxy());
  p->upstream_port_ = upstream_port;
  p->listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (p->listen_fd_ < 0) return Status::FromErrno(errno, "proxy socket");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(p->listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::listen(p->listen_fd_, 16) != 0) {
    return Status::FromErrno(errno, "proxy bind 127.0.0.1:0");
  }
  socklen_t len = sizeof a;
  if (::getsockname(p->listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    return Status::FromErrno(errno, "proxy getsockname");
  }
  p->port_ = ntohs(a.sin_port);
  p->wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (p->wake_fd_ < 0) return Status::FromErrno(errno, "proxy eventfd");
  p->thread_ = std::thread([raw = p.get()] { raw->Run(); });
  return p;
}

LinkProxy::~LinkProxy() {
  stop_.store(true);
  if (thread_.joinable()) {
    Wake();
    thread_.join();
  }
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void LinkProxy::Wake() {
  const uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof one);
}

void LinkProxy::SetBlackhole(bool on) {
  blackhole_.store(on);
  Wake();
}

void LinkProxy::SetDelay(std::chrono::milliseconds delay) {
  delay_ms_.store(delay.count());
  Wake();
}

void LinkProxy::Run() {
  const Clock& clock = SystemClock::Instance();
  std::list<Conn> conns;
  std::vector<pollfd> fds;
  std::vector<std::pair<Conn*, bool>> owners;  // per fd after the first two: conn, is_up
  while (!stop_.load()) {
    const bool hole = blackhole_.load();
    const Nanos now = clock.Now();
    fds.clear();
    owners.clear();
    fds.push_back({wake_fd_, POLLIN, 0});
    fds.push_back({listen_fd_, POLLIN, 0});
    Nanos next_due = Nanos::max();
    for (Conn& c : conns) {
      if (!hole && c.up < 0) {
        c.up = ConnectUpstream(upstream_port_);
        if (c.up < 0) c.dead = true;
      }
      if (c.dead) continue;
      for (const bool is_up : {false, true}) {
        const int fd = is_up ? c.up : c.down;
        if (fd < 0) continue;
        Pipe& in = is_up ? c.to_down : c.to_up;   // what this fd reads into
        Pipe& out = is_up ? c.to_up : c.to_down;  // what this fd writes
        short ev = 0;
        if (!hole && in.held < kMaxHeld) ev |= POLLIN;
        if (!hole && !out.queue.empty()) {
          if (out.queue.front().due <= now) {
            ev |= POLLOUT;
          } else {
            next_due = std::min(next_due, out.queue.front().due);
          }
        }
        fds.push_back({fd, ev, 0});
        owners.emplace_back(&c, is_up);
      }
    }
    int timeout = -1;
    if (next_due != Nanos::max()) {
      timeout = static_cast<int>((next_due - now).count() / 1'000'000 + 1);
    }
    if (::poll(fds.data(), fds.size(), timeout) < 0 && errno != EINTR) break;
    if ((fds[0].revents & POLLIN) != 0) {
      uint64_t n = 0;
      (void)!::read(wake_fd_, &n, sizeof n);
    }
    if ((fds[1].revents & POLLIN) != 0) {
      for (;;) {
        const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) break;
        const int one = 1;
        (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conns.emplace_back();
        conns.back().down = fd;
      }
    }
    const Nanos t = clock.Now();
    const Nanos delay = std::chrono::milliseconds(delay_ms_.load());  // as of the reads
    for (size_t i = 2; i < fds.size(); ++i) {
      auto [c, is_up] = owners[i - 2];
      if (c->dead) continue;
      const short re = fds[i].revents;
      Pipe& in = is_up ? c->to_down : c->to_up;
      Pipe& out = is_up ? c->to_up : c->to_down;
      if ((re & (POLLIN | POLLHUP | POLLERR)) != 0 && (fds[i].events & POLLIN) != 0) {
        if (!ReadInto(fds[i].fd, in, t + delay)) c->dead = true;
      }
      if ((re & POLLOUT) != 0 && !WriteFrom(fds[i].fd, out, t)) c->dead = true;
      // Hung up or broken: done (a hung-up fd polls ready at once, and
      // would spin this thread while the link is cut and nothing reads).
      if ((re & (POLLERR | POLLNVAL | POLLHUP)) != 0) c->dead = true;
    }
    // A connection that broke on either side is closed on both (the
    // dialling ZeroMQ socket reconnects through the proxy).
    for (auto it = conns.begin(); it != conns.end();) {
      if (it->dead) {
        if (it->down >= 0) ::close(it->down);
        if (it->up >= 0) ::close(it->up);
        it = conns.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (Conn& c : conns) {
    if (c.down >= 0) ::close(c.down);
    if (c.up >= 0) ::close(c.up);
  }
}

}  // namespace vnvram::testing
