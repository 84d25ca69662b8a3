// SimEventChannels: one sim event-channel handle (the stand-in for a
// libxenevtchn handle): its ports' sockets, their mask state and one epoll
// fd. Thread-safe; Pending() is for the one thread that polls Fd().
#pragma once

#include <sys/un.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "common/parse.h"
#include "common/result.h"
#include "platform/event_channel.h"
#include "platform/sim/sim_owner_token.h"
#include "platform/sim/sim_port_table.h"

namespace vnvram::sim {

// DOMID_SELF, accepted as `remote` the way Xen does.
inline constexpr DomId kDomIdSelf = 0x7FF0;

// SimEventChannels: platform::EventChannels on the sim, the stand-in for a
// libxenevtchn handle. Port state lives in each domain's port table
// (sim_port_table.h), so binding follows Xen's rules across processes:
// BindUnbound(remote) allocates a port only `remote` may bind;
// BindInterdomain(remote, port) fails with kInvalidArgument (EINVAL) when
// that port is not unbound or was offered to another domain (Xen does not
// tell the two apart either), and kNotFound (ESRCH) when no process of
// `remote` ever opened event channels (no port table: "no such domain").
// Notify, Unbind and Unmask of a port not bound through this handle return
// kNotFound. Each bound port has a Unix datagram socket
// DIR/evtchn/<self>/<port>; Notify() sends one byte to the peer port's
// socket without blocking (a full queue means the event is already
// pending). Fd() is an epoll fd over the unmasked ports' sockets.
//
// Pending/unmask, as xenevtchn: Pending() returns a port with an event,
// drains its socket and masks it; events that arrive while it is masked
// coalesce into one that Pending() reports again after Unmask(). Ports
// start unmasked.
//
// Peers that go away: Notify() on a port whose peer closed, died or never
// bound returns OK and the event is dropped, as Xen's EVTCHNOP_send does
// for an unbound port. Unbind() of an interdomain port returns the peer's
// port to "unbound, offered to us" as Xen does. A process that dies leaves
// its ports allocated in the table until a bind in that domain finds the
// table full and reclaims ports whose owner token is dead; an unbound port
// of a dead owner cannot be bound (EINVAL), while a port that was connected
// to a process that died counts as unbound again, so the dead end's domain
// can bind it anew (a restarted backend), as on Xen.
//
// Thread-safety: all calls are thread-safe; Pending() is meant for the one
// thread that polls Fd().
class SimEventChannels final : public platform::EventChannels {
 public:
  static Result<std::unique_ptr<SimEventChannels>> Open(const std::string& dir, DomId self);
  // Unbinds every port still bound.
  ~SimEventChannels() override;

  Result<platform::EvtchnPort> BindUnbound(DomId remote) override;
  Result<platform::EvtchnPort> BindInterdomain(DomId remote,
                                               platform::EvtchnPort remote_port) override;
  Status Unbind(platform::EvtchnPort local) override;
  Status Notify(platform::EvtchnPort local) override;
  int Fd() override { return epoll_fd_; }
  Result<std::optional<platform::EvtchnPort>> Pending() override;
  Status Unmask(platform::EvtchnPort local) override;

 private:
  struct Port {
    int sock = -1;
    bool masked = false;
    // The peer's socket address, valid while the port's state word is
    // `peer_word` (so Notify() builds it once per connection).
    uint64_t peer_word = 0;
    sockaddr_un peer_addr{};
  };
  SimEventChannels(std::string dir, DomId self, std::shared_ptr<PortTable> table,
                   std::unique_ptr<OwnerToken> token, int epoll_fd, int send_fd)
      : dir_(std::move(dir)),
        self_(self),
        table_(std::move(table)),
        token_(std::move(token)),
        epoll_fd_(epoll_fd),
        send_fd_(send_fd) {}

  Result<DomId> CheckRemote(DomId remote) const;
  // Reserves a port and binds its socket (mu_ held).
  Result<platform::EvtchnPort> NewPortLocked();
  // Closes the socket and frees the port in the table (mu_ held).
  void ClosePortLocked(platform::EvtchnPort port, Port& p);
  Result<std::shared_ptr<PortTable>> TableOfLocked(DomId domid);
  Status NotLocal(platform::EvtchnPort port) const;

  // Constant after construction.
  const std::string dir_;
  const DomId self_;
  const std::shared_ptr<PortTable> table_;
  const std::unique_ptr<OwnerToken> token_;
  const int epoll_fd_;
  const int send_fd_;

  std::mutex mu_;
  // Ports bound through this handle. Guarded by mu_.
  std::map<platform::EvtchnPort, Port> ports_;
  // Other domains' port tables, opened on first use. Guarded by mu_.
  std::map<DomId, std::shared_ptr<PortTable>> tables_;
};

}  // namespace vnvram::sim
