#include "platform/xen/xen_event_channels.h"

#include <fcntl.h>

#include <cerrno>
#include <string>

#include "platform/xen/xen_tool_logger.h"

// Xen 4.17's library headers have no extern "C" guards of their own.
extern "C" {
#include <xenevtchn.h>
}

namespace vnvram::xen {
namespace {

using platform::EvtchnPort;

// The kernel answers ENOTCONN (port bound by someone else) or EINVAL (port
// out of range) for a port this handle does not own.
Status PortError(int err, const std::string& what, EvtchnPort port) {
  if (err == ENOTCONN || err == EINVAL) {
    return Status(Code::kNotFound,
                  what + ": port " + std::to_string(port) + " is not bound through this handle",
                  err);
  }
  return Status::FromErrno(err, what);
}

}  // namespace

Result<std::unique_ptr<XenEventChannels>> XenEventChannels::Open() {
  xenevtchn_handle* h = xenevtchn_open(ToolLogger(), 0);
  if (h == nullptr) {
    const int err = errno;
    if (err == ENOENT || err == ENODEV || err == ENXIO) {
      return Status(Code::kUnavailable,
                    "xenevtchn_open: /dev/xen/evtchn absent: not running on Xen, or the "
                    "xen-evtchn module is not loaded",
                    err);
    }
    return Status::FromErrno(err, "xenevtchn_open /dev/xen/evtchn");
  }
  const int fd = xenevtchn_fd(h);
  const int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
    const int err = errno;
    xenevtchn_close(h);
    return Status::FromErrno(err, "fcntl O_NONBLOCK on /dev/xen/evtchn");
  }
  return std::unique_ptr<XenEventChannels>(new XenEventChannels(h));
}

XenEventChannels::~XenEventChannels() {
  xenevtchn_close(handle_);
}

Result<EvtchnPort> XenEventChannels::BindUnbound(DomId remote) {
  const std::string what = "xenevtchn_bind_unbound_port(domain " + std::to_string(remote) + ")";
  if (remote >= kDomIdFirstReserved) {
    return Status::InvalidArgument(what + ": not an ordinary domain id");
  }
  const xenevtchn_port_or_error_t port = xenevtchn_bind_unbound_port(handle_, remote);
  if (port < 0) return Status::FromErrno(errno, what);
  return static_cast<EvtchnPort>(port);
}

Result<EvtchnPort> XenEventChannels::BindInterdomain(DomId remote, EvtchnPort remote_port) {
  const std::string what = "xenevtchn_bind_interdomain(domain " + std::to_string(remote) +
                           ", remote port " + std::to_string(remote_port) + ")";
  if (remote >= kDomIdFirstReserved) {
    return Status::InvalidArgument(what + ": not an ordinary domain id");
  }
  const xenevtchn_port_or_error_t port = xenevtchn_bind_interdomain(handle_, remote, remote_port);
  if (port < 0) {
    const int err = errno;
    if (err == EINVAL) {
      // Xen's answer when the remote port is not unbound-for-us: wrong
      // domain, already connected, or never allocated.
      return Status(Code::kInvalidArgument,
                    what + ": the remote port is not an unbound port offered to this domain", err);
    }
    if (err == ESRCH) return Status(Code::kNotFound, what + ": no such domain", err);
    return Status::FromErrno(err, what);
  }
  return static_cast<EvtchnPort>(port);
}

Status XenEventChannels::Unbind(EvtchnPort local) {
  if (xenevtchn_unbind(handle_, local) != 0) {
    return PortError(errno, "xenevtchn_unbind(port " + std::to_string(local) + ")", local);
  }
  return Status::Ok();
}

Status XenEventChannels::Notify(EvtchnPort local) {
  if (xenevtchn_notify(handle_, local) != 0) {
    return PortError(errno, "xenevtchn_notify(port " + std::to_string(local) + ")", local);
  }
  return Status::Ok();
}

int XenEventChannels::Fd() {
  return xenevtchn_fd(handle_);
}

Result<std::optional<EvtchnPort>> XenEventChannels::Pending() {
  for (;;) {
    errno = 0;
    const xenevtchn_port_or_error_t port = xenevtchn_pending(handle_);
    if (port >= 0) return std::optional<EvtchnPort>(static_cast<EvtchnPort>(port));
    const int err = errno;
    if (err == EINTR) continue;
    if (err == EAGAIN || err == EWOULDBLOCK) return std::optional<EvtchnPort>();
    if (err == EFBIG) {
      return Status(Code::kResourceExhausted,
                    "xenevtchn_pending: the kernel's event ring overflowed; events were lost", err);
    }
    if (err == 0) return Status::IoError("xenevtchn_pending: short read from /dev/xen/evtchn");
    return Status::FromErrno(err, "xenevtchn_pending");
  }
}

Status XenEventChannels::Unmask(EvtchnPort local) {
  if (xenevtchn_unmask(handle_, local) != 0) {
    return PortError(errno, "xenevtchn_unmask(port " + std::to_string(local) + ")", local);
  }
  return Status::Ok();
}

}  // namespace vnvram::xen
