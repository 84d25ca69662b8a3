// Platform: the single seam between vnvram and the hypervisor, in the way
// LevelDB's Env separates POSIX from memory. A Platform knows which domain
// the caller is and opens handles of each kind; two implementations exist:
// `xen` (libxenstore, libxengnttab/gntshr, libxenevtchn, libxenctrl) and
// `sim` (one Linux host pretending to be several domains). A Platform is
// immutable after creation and thread-safe; the handles it opens are
// documented in their own headers.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/parse.h"
#include "common/result.h"
#include "platform/event_channel.h"
#include "platform/grant.h"
#include "platform/xenstore.h"

namespace vnvram::platform {

class Platform {
 public:
  virtual ~Platform() = default;
  // "xen" or "sim".
  virtual std::string_view name() const = 0;
  // The domain this process runs in.
  virtual DomId self_domid() const = 0;
  virtual Result<std::unique_ptr<XenStore>> OpenXenStore() = 0;
  virtual Result<std::unique_ptr<GrantSharer>> OpenGrantSharer() = 0;
  virtual Result<std::unique_ptr<GrantMapper>> OpenGrantMapper() = 0;
  virtual Result<std::unique_ptr<EventChannels>> OpenEventChannels() = 0;
};

// Real Xen: opens the devices under /dev/xen (kUnavailable with the reason
// when they are absent) and learns the domain id from xenstore.
Result<std::unique_ptr<Platform>> OpenXenPlatform();

// The sim platform: `dir` is the directory the sim xenstored serves
// (`dir/socket` for dom0, `dir/domain/<N>` for domain N); grants and event
// channels live under it too. The caller acts as `domid`.
struct SimOptions {
  std::string dir;
  DomId domid = 0;
};
Result<std::unique_ptr<Platform>> OpenSimPlatform(const SimOptions& options);

// Chooses by a string as configs and command lines give it: "xen",
// "sim:<dir>:<domid>". Environment fallback VNVRAM_PLATFORM when `spec`
// is empty; "xen" when both are empty.
Result<std::unique_ptr<Platform>> OpenPlatform(std::string_view spec);

}  // namespace vnvram::platform
