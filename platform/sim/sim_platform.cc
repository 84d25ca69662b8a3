#include "platform/sim/sim_platform.h"

#include "platform/sim/sim_event_channels.h"
#include "platform/sim/sim_grant_mapper.h"
#include "platform/sim/sim_grant_sharer.h"
#include "platform/sim/sim_layout.h"
#include "platform/xen/xen_xenstore.h"

namespace vnvram::sim {

Result<std::unique_ptr<SimPlatform>> SimPlatform::Open(const platform::SimOptions& options) {
  if (options.dir.empty()) return Status::InvalidArgument("sim platform: empty directory");
  if (options.domid >= kDomIdFirstReserved) {
    return Status::InvalidArgument("sim platform: domain " + std::to_string(options.domid) +
                                   " is reserved");
  }
  std::string dir = options.dir;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  VNVRAM_RETURN_IF_ERROR(MakeDirs(dir));
  return std::unique_ptr<SimPlatform>(new SimPlatform(std::move(dir), options.domid));
}

std::string SimPlatform::XenStoreSocketPath() const {
  if (domid_ == 0) return dir_ + "/socket";
  return dir_ + "/domain/" + std::to_string(domid_);
}

Result<std::unique_ptr<platform::XenStore>> SimPlatform::OpenXenStore() {
  return xen::OpenXenStoreAt(XenStoreSocketPath());
}

Result<std::unique_ptr<platform::GrantSharer>> SimPlatform::OpenGrantSharer() {
  VNVRAM_ASSIGN_OR_RETURN(auto sharer, SimGrantSharer::Open(dir_, domid_));
  return std::unique_ptr<platform::GrantSharer>(std::move(sharer));
}

Result<std::unique_ptr<platform::GrantMapper>> SimPlatform::OpenGrantMapper() {
  VNVRAM_ASSIGN_OR_RETURN(auto mapper, SimGrantMapper::Open(dir_, domid_));
  return std::unique_ptr<platform::GrantMapper>(std::move(mapper));
}

Result<std::unique_ptr<platform::EventChannels>> SimPlatform::OpenEventChannels() {
  VNVRAM_ASSIGN_OR_RETURN(auto evtchn, SimEventChannels::Open(dir_, domid_));
  return std::unique_ptr<platform::EventChannels>(std::move(evtchn));
}

}  // namespace vnvram::sim

namespace vnvram::platform {

Result<std::unique_ptr<Platform>> OpenSimPlatform(const SimOptions& options) {
  VNVRAM_ASSIGN_OR_RETURN(auto p, sim::SimPlatform::Open(options));
  return std::unique_ptr<Platform>(std::move(p));
}

}  // namespace vnvram::platform
