// XenDomains: what the hypervisor says about a domain, through libxenctrl
// (xc_domain_getinfolist on /dev/xen/privcmd). Used to tell a dead or dying
// peer from a slow one without waiting for xenstore's @releaseDomain. Needs
// a privileged domain (dom0, or a driver domain XSM allows): elsewhere the
// queries give kPermissionDenied. Xen-only: the sim has no equivalent (it
// uses XenStore::IsDomainIntroduced). Thread-safe (libxenctrl handles are
// reentrant unless opened with XC_OPENFLAG_NON_REENTRANT, which we do not).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include "common/parse.h"
#include "common/result.h"

struct xc_interface_core;

namespace vnvram::xen {

struct DomainInfo {
  DomId domid = 0;
  bool dying = false;     // being torn down; it will not run again
  bool shutdown = false;  // the guest shut down (see shutdown_reason)
  bool paused = false;
  uint8_t shutdown_reason = 0;  // SHUTDOWN_* from xen/sched.h when shutdown
  uint64_t tot_pages = 0;
};

class XenDomains {
 public:
  // kUnavailable when /dev/xen/privcmd cannot be opened.
  static Result<std::unique_ptr<XenDomains>> Open();
  ~XenDomains();

  XenDomains(const XenDomains&) = delete;
  XenDomains& operator=(const XenDomains&) = delete;

  // nullopt when Xen has no domain `domid`.
  Result<std::optional<DomainInfo>> GetDomainInfo(DomId domid);
  // True while the domain exists and is neither dying nor shut down.
  Result<bool> IsAlive(DomId domid);

 private:
  explicit XenDomains(xc_interface_core* xch) : xch_(xch) {}

  xc_interface_core* const xch_;  // constant after construction
};

}  // namespace vnvram::xen
