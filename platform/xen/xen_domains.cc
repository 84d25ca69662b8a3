// Compiled as gnu++20 (see CMakeLists.txt): Xen's domctl headers, which
// <xenctrl.h> pulls in, use anonymous structs and refuse strict ISO mode.
// <xenctrl.h> must stay the first Xen header of this file: it defines
// __XEN_TOOLS__, which the Xen headers it includes need to see first.
#include "platform/xen/xen_domains.h"

#include <cerrno>
#include <string>

#include "platform/xen/xen_tool_logger.h"

// Xen 4.17's library headers have no extern "C" guards of their own.
extern "C" {
#include <xenctrl.h>
}

namespace vnvram::xen {

Result<std::unique_ptr<XenDomains>> XenDomains::Open() {
  xc_interface* xch = xc_interface_open(ToolLogger(), ToolLogger(), 0);
  if (xch == nullptr) {
    const int err = errno;
    if (err == ENOENT || err == ENODEV || err == ENXIO) {
      return Status(Code::kUnavailable,
                    "xc_interface_open: /dev/xen/privcmd absent: not running on Xen, or the "
                    "xen-privcmd module is not loaded",
                    err);
    }
    return Status::FromErrno(err, "xc_interface_open /dev/xen/privcmd");
  }
  return std::unique_ptr<XenDomains>(new XenDomains(xch));
}

XenDomains::~XenDomains() {
  xc_interface_close(xch_);
}

Result<std::optional<DomainInfo>> XenDomains::GetDomainInfo(DomId domid) {
  const std::string what = "xc_domain_getinfolist(domain " + std::to_string(domid) + ")";
  if (domid >= kDomIdFirstReserved) {
    return Status::InvalidArgument(what + ": not an ordinary domain id");
  }
  xc_domaininfo_t info{};
  // Returns the first domain whose id is >= domid, so check which one came.
  const int n = xc_domain_getinfolist(xch_, domid, 1, &info);
  if (n < 0) {
    const int err = errno;
    if (err == EPERM || err == EACCES) {
      return Status(Code::kPermissionDenied,
                    what + ": domain queries need a privileged domain (dom0)", err);
    }
    return Status::FromErrno(err, what);
  }
  if (n == 0 || info.domain != domid) return std::optional<DomainInfo>();
  DomainInfo d;
  d.domid = domid;
  d.dying = (info.flags & XEN_DOMINF_dying) != 0;
  d.shutdown = (info.flags & XEN_DOMINF_shutdown) != 0;
  d.paused = (info.flags & XEN_DOMINF_paused) != 0;
  d.shutdown_reason =
      static_cast<uint8_t>((info.flags >> XEN_DOMINF_shutdownshift) & XEN_DOMINF_shutdownmask);
  d.tot_pages = info.tot_pages;
  return std::optional<DomainInfo>(d);
}

Result<bool> XenDomains::IsAlive(DomId domid) {
  VNVRAM_ASSIGN_OR_RETURN(const auto info, GetDomainInfo(domid));
  return info.has_value() && !info->dying && !info->shutdown;
}

}  // namespace vnvram::xen
