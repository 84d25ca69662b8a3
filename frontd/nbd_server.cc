#include "frontd/nbd_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <exception>

#include "common/log.h"
#include "frontd/client_socket.h"

namespace vnvram::frontd {
namespace {

// How long accepting pauses when the process is out of descriptors.
constexpr int kAcceptPauseMs = 100;

std::string PeerOf(int fd, bool tcp) {
  if (!tcp) return "unix";
  sockaddr_storage a{};
  socklen_t len = sizeof a;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) return "tcp";
  char host[INET6_ADDRSTRLEN] = {};
  uint16_t port = 0;
  if (a.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&a);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    port = ntohs(in6->sin6_port);
    return "tcp [" + std::string(host) + "]:" + std::to_string(port);
  }
  const auto* in4 = reinterpret_cast<const sockaddr_in*>(&a);
  ::inet_ntop(AF_INET, &in4->sin_addr, host, sizeof host);
  port = ntohs(in4->sin_port);
  return "tcp " + std::string(host) + ":" + std::to_string(port);
}

void Raise(int eventfd) {
  const uint64_t one = 1;
  // An eventfd write of 1 fails only at a counter near 2^64.
  (void)!::write(eventfd, &one, sizeof one);
}

}  // namespace

Result<std::unique_ptr<NbdServer>> NbdServer::Create(BlockExport& exp, ServerConfig config) {
  UniqueFd stop(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (stop.get() < 0) return Status::FromErrno(errno, "eventfd");
  UniqueFd reap(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (reap.get() < 0) return Status::FromErrno(errno, "eventfd");
  return std::unique_ptr<NbdServer>(
      new NbdServer(exp, std::move(config), stop.release(), reap.release()));
}

NbdServer::NbdServer(BlockExport& exp, ServerConfig config, int stop_fd, int reap_fd)
    : export_(exp), config_(std::move(config)), stop_fd_(stop_fd), reap_fd_(reap_fd) {}

NbdServer::~NbdServer() {
  Stop();
  Reap(/*all=*/true);
}

void NbdServer::AddListener(int fd, bool tcp) {
  listeners_.push_back(std::make_unique<Listener>(fd, tcp));
}

void NbdServer::Stop() {
  Raise(stop_fd_.get());
}

size_t NbdServer::active() const {
  return active_.load();
}

Status NbdServer::Run(int signal_fd) {
  bool paused = false;
  for (;;) {
    std::vector<pollfd> fds;
    fds.push_back({stop_fd_.get(), POLLIN, 0});
    fds.push_back({reap_fd_.get(), POLLIN, 0});
    fds.push_back({signal_fd, POLLIN, 0});  // poll ignores a negative fd
    const size_t first_listener = fds.size();
    if (!paused) {
      for (const auto& l : listeners_) fds.push_back({l->fd.get(), POLLIN, 0});
    }
    const int n = ::poll(fds.data(), fds.size(), paused ? kAcceptPauseMs : -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      Stop();
      Reap(true);
      return Status::FromErrno(errno, "poll on the listening sockets");
    }
    paused = false;
    if ((fds[0].revents & POLLIN) != 0) break;
    if ((fds[2].revents & POLLIN) != 0) {
      signalfd_siginfo si{};
      if (::read(signal_fd, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
        spdlog::info("signal {} ({}): stopping", si.ssi_signo, strsignal(si.ssi_signo));
      }
      break;
    }
    if ((fds[1].revents & POLLIN) != 0) {
      uint64_t v = 0;
      (void)!::read(reap_fd_.get(), &v, sizeof v);
      Reap(false);
    }
    for (size_t i = first_listener; i < fds.size(); ++i) {
      if ((fds[i].revents & POLLIN) != 0) AcceptFrom(*listeners_[i - first_listener], &paused);
    }
  }
  // Stop accepting first, then end the sessions.
  listeners_.clear();
  Stop();
  Reap(true);
  return Status::Ok();
}

void NbdServer::AcceptFrom(const Listener& l, bool* pause) {
  for (;;) {
    const int fd = ::accept4(l.fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      // Out of descriptors or memory: the pending connection stays in the
      // backlog; try again a little later instead of spinning.
      spdlog::warn("accept: {} (accepting pauses {} ms)", std::strerror(errno), kAcceptPauseMs);
      *pause = true;
      return;
    }
    Reap(false);
    if (connections_.size() >= config_.max_connections) {
      ++refused_;
      spdlog::warn("connection refused: {} connections already (the limit)", connections_.size());
      ::close(fd);
      continue;
    }
    if (l.tcp) {
      const int one = 1;
      (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    ++accepted_;
    auto c = std::make_unique<Connection>();
    c->id = ++next_id_;
    Connection* raw = c.get();
    std::string peer = PeerOf(fd, l.tcp);
    ++active_;
    try {
      c->thread = std::thread([this, raw, fd, peer] { Serve(raw, fd, peer); });
    } catch (const std::exception& e) {
      --active_;
      spdlog::error("client {} ({}): no thread for it: {}", raw->id, peer, e.what());
      ::close(fd);
      continue;
    }
    connections_.push_back(std::move(c));
  }
}

void NbdServer::Serve(Connection* c, int fd, const std::string& peer) {
  const log::Context log("client " + std::to_string(c->id) + " " + peer);
  try {
    ClientSocket socket(fd, stop_fd_.get(), config_.session.stop_grace);
    log.Info("connected");
    NbdSession session(socket, export_, config_.session, log);
    const Status s = session.Run();
    const SessionStats& st = session.stats();
    if (s.ok()) {
      log.Info("closed: {} requests, {} bytes read, {} written, {} flushes, {} error replies",
               st.requests, st.bytes_read, st.bytes_written, st.flushes, st.error_replies);
    } else {
      log.Warn("disconnected: {} (after {} requests)", s.ToString(), st.requests);
    }
  } catch (const std::exception& e) {
    // Allocation failure and the like end this connection, never the daemon.
    log.Error("session failed: {}", e.what());
  }
  --active_;
  c->done.store(true);
  Raise(reap_fd_.get());
}

void NbdServer::Reap(bool all) {
  for (auto it = connections_.begin(); it != connections_.end();) {
    Connection& c = **it;
    if (all || c.done.load()) {
      if (c.thread.joinable()) c.thread.join();
      it = connections_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace vnvram::frontd
