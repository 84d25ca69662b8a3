#include "platform/sim/sim_event_channels.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "platform/sim/sim_layout.h"

namespace vnvram::sim {

using platform::EvtchnPort;

namespace {

Result<sockaddr_un> SocketAddress(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    return Status(Code::kInvalidArgument,
                  "event channel socket path '" + path + "' is longer than " +
                      std::to_string(sizeof addr.sun_path - 1) + " bytes (use a shorter sim dir)",
                  ENAMETOOLONG);
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

}  // namespace

Result<std::unique_ptr<SimEventChannels>> SimEventChannels::Open(const std::string& dir,
                                                                 DomId self) {
  if (self >= kDomIdFirstReserved) {
    return Status::InvalidArgument("sim event channels: domain " + std::to_string(self) +
                                   " is reserved");
  }
  VNVRAM_RETURN_IF_ERROR(SocketAddress(PortSocketPath(dir, self, kPortTableCapacity)).status());
  VNVRAM_ASSIGN_OR_RETURN(auto table, PortTable::Open(dir, self));
  VNVRAM_ASSIGN_OR_RETURN(auto token, OwnerToken::Create(dir));
  const int epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd < 0) return Status::FromErrno(errno, "sim event channels: epoll_create1");
  const int send_fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (send_fd < 0) {
    const int err = errno;
    ::close(epoll_fd);
    return Status::FromErrno(err, "sim event channels: socket");
  }
  return std::unique_ptr<SimEventChannels>(
      new SimEventChannels(dir, self, std::move(table), std::move(token), epoll_fd, send_fd));
}

SimEventChannels::~SimEventChannels() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    while (!ports_.empty()) {
      auto it = ports_.begin();
      ClosePortLocked(it->first, it->second);
      ports_.erase(it);
    }
  }
  ::close(send_fd_);
  ::close(epoll_fd_);
}

Result<DomId> SimEventChannels::CheckRemote(DomId remote) const {
  if (remote == kDomIdSelf) return self_;
  if (remote >= kDomIdFirstReserved) {
    return Status(Code::kInvalidArgument,
                  "event channel: remote domain " + std::to_string(remote) + " is reserved",
                  EINVAL);
  }
  return remote;
}

Status SimEventChannels::NotLocal(EvtchnPort port) const {
  return Status(Code::kNotFound,
                "event channel: port " + std::to_string(port) + " is not bound through this handle",
                ENOTCONN);
}

Result<std::shared_ptr<PortTable>> SimEventChannels::TableOfLocked(DomId domid) {
  if (domid == self_) return table_;
  auto it = tables_.find(domid);
  if (it != tables_.end()) return it->second;
  VNVRAM_ASSIGN_OR_RETURN(auto table, PortTable::Open(dir_, domid, /*create=*/false));
  tables_.emplace(domid, table);
  return table;
}

Result<EvtchnPort> SimEventChannels::NewPortLocked() {
  VNVRAM_ASSIGN_OR_RETURN(const EvtchnPort port, table_->Reserve(token_->id()));
  const std::string path = PortSocketPath(dir_, self_, port);
  auto addr = SocketAddress(path);
  if (!addr.ok()) {
    table_->Free(port);
    return addr.status();
  }
  Port p;
  p.sock = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (p.sock < 0) {
    const int err = errno;
    table_->Free(port);
    return Status::FromErrno(err, "event channel: socket");
  }
  ::unlink(path.c_str());  // left by a process that died holding this port
  if (::bind(p.sock, reinterpret_cast<const sockaddr*>(&*addr), sizeof *addr) != 0) {
    const int err = errno;
    ::close(p.sock);
    table_->Free(port);
    return Status::FromErrno(err, "event channel: bind " + path);
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u32 = port;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, p.sock, &ev) != 0) {
    const int err = errno;
    ::close(p.sock);
    ::unlink(path.c_str());
    table_->Free(port);
    return Status::FromErrno(err, "event channel: epoll add");
  }
  ports_.emplace(port, p);
  return port;
}

void SimEventChannels::ClosePortLocked(EvtchnPort port, Port& p) {
  if (!p.masked) ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, p.sock, nullptr);
  ::close(p.sock);
  ::unlink(PortSocketPath(dir_, self_, port).c_str());
  auto snap = table_->Lookup(port);
  if (snap.ok() && snap->state == PortState::kInterdomain) {
    auto remote = TableOfLocked(snap->remote);
    if (remote.ok()) (*remote)->Disconnect(snap->remote_port, self_, port);
  }
  table_->Free(port);
}

Result<EvtchnPort> SimEventChannels::BindUnbound(DomId remote) {
  VNVRAM_ASSIGN_OR_RETURN(const DomId peer, CheckRemote(remote));
  std::lock_guard<std::mutex> lock(mu_);
  VNVRAM_ASSIGN_OR_RETURN(const EvtchnPort port, NewPortLocked());
  table_->SetUnbound(port, peer);
  return port;
}

Result<EvtchnPort> SimEventChannels::BindInterdomain(DomId remote, EvtchnPort remote_port) {
  VNVRAM_ASSIGN_OR_RETURN(const DomId peer, CheckRemote(remote));
  std::lock_guard<std::mutex> lock(mu_);
  auto remote_table_or = TableOfLocked(peer);
  if (!remote_table_or.ok()) return remote_table_or.status().WithContext("bind interdomain");
  auto remote_table = std::move(*remote_table_or);
  VNVRAM_ASSIGN_OR_RETURN(const EvtchnPort port, NewPortLocked());
  // Ours first, so a peer that unbinds right after Connect finds us.
  table_->SetInterdomain(port, peer, remote_port);
  Status s = remote_table->Connect(remote_port, self_, port, *table_);
  if (!s.ok()) {
    table_->SetUnbound(port, peer);  // nothing to disconnect on the peer
    auto it = ports_.find(port);
    ClosePortLocked(port, it->second);
    ports_.erase(it);
    return s.WithContext("bind interdomain");
  }
  return port;
}

Status SimEventChannels::Unbind(EvtchnPort local) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = ports_.find(local);
  if (it == ports_.end()) return NotLocal(local);
  ClosePortLocked(local, it->second);
  ports_.erase(it);
  return Status::Ok();
}

Status SimEventChannels::Notify(EvtchnPort local) {
  sockaddr_un addr{};
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = ports_.find(local);
    if (it == ports_.end()) return NotLocal(local);
    VNVRAM_ASSIGN_OR_RETURN(const PortSnapshot snap, table_->Lookup(local));
    // Unbound (never bound, or the peer closed): dropped silently, as Xen.
    if (snap.state != PortState::kInterdomain) return Status::Ok();
    Port& p = it->second;
    if (p.peer_word != snap.word) {
      VNVRAM_ASSIGN_OR_RETURN(p.peer_addr,
                              SocketAddress(PortSocketPath(dir_, snap.remote, snap.remote_port)));
      p.peer_word = snap.word;
    }
    addr = p.peer_addr;
  }
  const char one = 1;
  for (;;) {
    if (::sendto(send_fd_, &one, 1, MSG_DONTWAIT | MSG_NOSIGNAL,
                 reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 1) {
      return Status::Ok();
    }
    switch (errno) {
      case EINTR: continue;
      case EAGAIN:        // queue full: the event is already pending
      case ECONNREFUSED:  // peer died: nobody to tell
      case ENOENT:        // peer unbound meanwhile
        return Status::Ok();
      default:
        return Status::FromErrno(errno, "event channel: notify port " + std::to_string(local));
    }
  }
}

Result<std::optional<EvtchnPort>> SimEventChannels::Pending() {
  for (;;) {
    epoll_event ev{};
    const int n = ::epoll_wait(epoll_fd_, &ev, 1, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "event channel: epoll_wait");
    }
    if (n == 0) return std::optional<EvtchnPort>();
    const EvtchnPort port = ev.data.u32;
    std::lock_guard<std::mutex> lock(mu_);
    auto it = ports_.find(port);
    if (it == ports_.end() || it->second.masked) continue;  // unbound meanwhile
    char buf[64];
    while (::recv(it->second.sock, buf, sizeof buf, MSG_DONTWAIT) >= 0 || errno == EINTR) {
    }
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, it->second.sock, nullptr);
    it->second.masked = true;
    return std::optional<EvtchnPort>(port);
  }
}

Status SimEventChannels::Unmask(EvtchnPort local) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = ports_.find(local);
  if (it == ports_.end()) return NotLocal(local);
  if (!it->second.masked) return Status::Ok();
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u32 = local;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, it->second.sock, &ev) != 0) {
    return Status::FromErrno(errno, "event channel: unmask port " + std::to_string(local));
  }
  it->second.masked = false;
  return Status::Ok();
}

}  // namespace vnvram::sim
