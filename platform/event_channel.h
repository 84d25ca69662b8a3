// EventChannels: the platform seam for Xen event channels. One object is
// one handle (libxenevtchn on Xen; Unix datagram sockets on the sim) owning
// any number of local ports, all announced through one pollable fd. Calls
// are thread-safe; Pending() is meant for the one thread polling Fd().
#pragma once

#include <optional>

#include "common/parse.h"
#include "common/result.h"
#include "platform/grant.h"

namespace vnvram::platform {

class EventChannels {
 public:
  virtual ~EventChannels() = default;
  // Allocates a port that `remote` may bind to; returns the local port.
  virtual Result<EvtchnPort> BindUnbound(DomId remote) = 0;
  // Binds to `remote_port` that `remote` allocated for us; returns ours.
  virtual Result<EvtchnPort> BindInterdomain(DomId remote, EvtchnPort remote_port) = 0;
  virtual Status Unbind(EvtchnPort local) = 0;
  // Raises an event on the other end of `local`.
  virtual Status Notify(EvtchnPort local) = 0;
  // Readable while some port has a pending event.
  virtual int Fd() = 0;
  // The next port with a pending event, or nullopt. The port stays masked
  // until Unmask(); further events on it coalesce, as on Xen.
  virtual Result<std::optional<EvtchnPort>> Pending() = 0;
  virtual Status Unmask(EvtchnPort local) = 0;
};

}  // namespace vnvram::platform
