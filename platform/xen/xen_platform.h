// XenPlatform: platform::Platform on a real Xen host (dom0, a driver domain
// or a guest). Knows the caller's domain id (read once from xenstore at
// open) and opens the libxen* handles of this directory. Immutable after
// Open(); thread-safe. OpenXenPlatform() in platform/platform.h returns one.
#pragma once

#include <memory>
#include <string_view>

#include "common/parse.h"
#include "common/result.h"
#include "platform/platform.h"

namespace vnvram::xen {

// The device nodes the Xen platform opens.
inline constexpr std::string_view kXenDeviceDir = "/dev/xen";
inline constexpr std::string_view kGntdevDevice = "/dev/xen/gntdev";
inline constexpr std::string_view kGntallocDevice = "/dev/xen/gntalloc";
inline constexpr std::string_view kEvtchnDevice = "/dev/xen/evtchn";

// OK when `path` exists; otherwise kUnavailable with the reason, e.g.
// "/dev/xen/gntdev absent: not running on Xen (no /dev/xen)" or
// "/dev/xen/gntdev absent: the xen-gntdev module is not loaded".
Status CheckXenDevice(std::string_view path);

class XenPlatform final : public platform::Platform {
 public:
  // kUnavailable when /dev/xen is absent or xenstore cannot be reached;
  // the domain id comes from the relative xenstore key "domid" (in dom0
  // before xen-init-dom0 wrote it: 0 when /proc/xen/capabilities says
  // control_d).
  static Result<std::unique_ptr<XenPlatform>> Open();

  std::string_view name() const override { return "xen"; }
  DomId self_domid() const override { return self_domid_; }
  Result<std::unique_ptr<platform::XenStore>> OpenXenStore() override;
  Result<std::unique_ptr<platform::GrantSharer>> OpenGrantSharer() override;
  Result<std::unique_ptr<platform::GrantMapper>> OpenGrantMapper() override;
  Result<std::unique_ptr<platform::EventChannels>> OpenEventChannels() override;

 private:
  explicit XenPlatform(DomId self_domid) : self_domid_(self_domid) {}

  const DomId self_domid_;
};

}  // namespace vnvram::xen
