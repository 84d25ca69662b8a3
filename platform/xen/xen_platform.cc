#include "platform/xen/xen_platform.h"

#include <sys/stat.h>

#include <cerrno>
#include <fstream>
#include <string>

#include "platform/xen/xen_event_channels.h"
#include "platform/xen/xen_grant_mapper.h"
#include "platform/xen/xen_grant_sharer.h"
#include "platform/xen/xen_xenstore.h"

namespace vnvram::xen {
namespace {

bool Exists(std::string_view path) {
  struct stat st {};
  return ::stat(std::string(path).c_str(), &st) == 0;
}

// The module that creates a /dev/xen node.
std::string_view ModuleFor(std::string_view path) {
  if (path == kGntdevDevice) return "xen-gntdev";
  if (path == kGntallocDevice) return "xen-gntalloc";
  if (path == kEvtchnDevice) return "xen-evtchn";
  if (path == "/dev/xen/privcmd") return "xen-privcmd";
  return "";
}

// dom0 says "control_d" in /proc/xen/capabilities (xenfs mounted).
bool IsControlDomain() {
  std::ifstream in("/proc/xen/capabilities");
  std::string caps;
  return in && std::getline(in, caps) && caps.find("control_d") != std::string::npos;
}

}  // namespace

Status CheckXenDevice(std::string_view path) {
  if (Exists(path)) return Status::Ok();
  std::string msg(path);
  msg += " absent: ";
  if (!Exists(kXenDeviceDir)) {
    msg += "not running on Xen (no /dev/xen)";
  } else {
    const std::string_view module = ModuleFor(path);
    msg += module.empty() ? std::string("its Xen driver is not loaded")
                          : "the " + std::string(module) + " module is not loaded";
  }
  return Status(Code::kUnavailable, msg, ENOENT);
}

Result<std::unique_ptr<XenPlatform>> XenPlatform::Open() {
  if (!Exists(kXenDeviceDir)) {
    return Status(Code::kUnavailable,
                  "Xen platform: /dev/xen absent: not running on Xen (or no Xen drivers loaded)",
                  ENOENT);
  }
  auto xs = xen::OpenXenStore();
  if (!xs.ok()) return xs.status().WithContext("Xen platform: opening xenstore");
  auto text = (*xs)->Read(platform::kNoTx, "domid");
  if (!text.ok()) {
    if (text.status().code() == Code::kNotFound && IsControlDomain()) {
      return std::unique_ptr<XenPlatform>(new XenPlatform(0));
    }
    return text.status().WithContext("Xen platform: reading own domain id (xenstore key 'domid')");
  }
  auto domid = ParseDomId(*text, "xenstore key 'domid'");
  if (!domid.ok()) return domid.status().WithContext("Xen platform");
  return std::unique_ptr<XenPlatform>(new XenPlatform(*domid));
}

Result<std::unique_ptr<platform::XenStore>> XenPlatform::OpenXenStore() {
  return xen::OpenXenStore();
}

Result<std::unique_ptr<platform::GrantSharer>> XenPlatform::OpenGrantSharer() {
  VNVRAM_ASSIGN_OR_RETURN(auto sharer, XenGrantSharer::Open());
  return std::unique_ptr<platform::GrantSharer>(std::move(sharer));
}

Result<std::unique_ptr<platform::GrantMapper>> XenPlatform::OpenGrantMapper() {
  VNVRAM_ASSIGN_OR_RETURN(auto mapper, XenGrantMapper::Open());
  return std::unique_ptr<platform::GrantMapper>(std::move(mapper));
}

Result<std::unique_ptr<platform::EventChannels>> XenPlatform::OpenEventChannels() {
  VNVRAM_ASSIGN_OR_RETURN(auto channels, XenEventChannels::Open());
  return std::unique_ptr<platform::EventChannels>(std::move(channels));
}

}  // namespace vnvram::xen

namespace vnvram::platform {

Result<std::unique_ptr<Platform>> OpenXenPlatform() {
  VNVRAM_ASSIGN_OR_RETURN(auto p, xen::XenPlatform::Open());
  return std::unique_ptr<Platform>(std::move(p));
}

}  // namespace vnvram::platform
