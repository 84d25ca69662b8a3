// SimPlatform: platform::Platform for a process acting as one domain of a
// simulated host under a directory (the sim xenstored's, grants', event
// channels'). Immutable after creation and thread-safe.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "common/parse.h"
#include "platform/platform.h"

namespace vnvram::sim {

// SimPlatform: platform::Platform for one process acting as domain
// `options.domid` of a simulated host whose state lives under
// `options.dir` (layout in sim_layout.h). The xenstore is the sim
// xenstored, reached through the real libxenstore on DIR/socket (dom0) or
// DIR/domain/<N>; grants and event channels are this directory's
// SimGrantSharer/SimGrantMapper/SimEventChannels. Immutable after creation
// and thread-safe; each Open* call returns a new handle.
class SimPlatform final : public platform::Platform {
 public:
  // kInvalidArgument for an empty dir or a reserved domid; creates `dir`.
  static Result<std::unique_ptr<SimPlatform>> Open(const platform::SimOptions& options);

  std::string_view name() const override { return "sim"; }
  DomId self_domid() const override { return domid_; }
  Result<std::unique_ptr<platform::XenStore>> OpenXenStore() override;
  Result<std::unique_ptr<platform::GrantSharer>> OpenGrantSharer() override;
  Result<std::unique_ptr<platform::GrantMapper>> OpenGrantMapper() override;
  Result<std::unique_ptr<platform::EventChannels>> OpenEventChannels() override;

  const std::string& dir() const { return dir_; }
  // The socket this domain's xenstore connection uses.
  std::string XenStoreSocketPath() const;

 private:
  SimPlatform(std::string dir, DomId domid) : dir_(std::move(dir)), domid_(domid) {}
  const std::string dir_;
  const DomId domid_;
};

}  // namespace vnvram::sim
