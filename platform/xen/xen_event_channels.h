// XenEventChannels: platform::EventChannels on libxenevtchn
// (/dev/xen/evtchn). Owns one handle; every port bound through it is
// released when the object is destroyed (the kernel unbinds them on close).
// Calls are thread-safe (each is one ioctl, read or write on the handle's
// fd); Pending() is for the one thread that polls Fd(). The fd is switched
// to non-blocking so Pending() never blocks.
//
// Xen semantics that callers see: a port that fired stays masked until
// Unmask(); Notify() on a port whose peer has gone succeeds and the event is
// dropped; BindInterdomain() leaves one event pending on the new local port
// (Xen sets it in case the peer signalled before the bind), so treat events
// as hints and re-check shared state. Binding to our own domain (loopback)
// is allowed.
#pragma once

#include <memory>
#include <optional>

#include "common/result.h"
#include "platform/event_channel.h"

struct xenevtchn_handle;

namespace vnvram::xen {

class XenEventChannels final : public platform::EventChannels {
 public:
  // kUnavailable when /dev/xen/evtchn is absent.
  static Result<std::unique_ptr<XenEventChannels>> Open();
  ~XenEventChannels() override;

  XenEventChannels(const XenEventChannels&) = delete;
  XenEventChannels& operator=(const XenEventChannels&) = delete;

  Result<platform::EvtchnPort> BindUnbound(DomId remote) override;
  Result<platform::EvtchnPort> BindInterdomain(DomId remote,
                                               platform::EvtchnPort remote_port) override;
  // kNotFound when `local` is not bound through this handle.
  Status Unbind(platform::EvtchnPort local) override;
  // kNotFound when `local` is not bound through this handle.
  Status Notify(platform::EvtchnPort local) override;
  int Fd() override;
  Result<std::optional<platform::EvtchnPort>> Pending() override;
  Status Unmask(platform::EvtchnPort local) override;

 private:
  explicit XenEventChannels(xenevtchn_handle* handle) : handle_(handle) {}

  xenevtchn_handle* const handle_;  // constant after construction
};

}  // namespace vnvram::xen
