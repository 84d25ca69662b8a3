// ConfigDevices: turns a parsed vnvram= config (vnvram_config.h) into
// vnvram devices of one domain: resolves backend names to domain ids,
// attaches every path (toolstack.h's Attach), waits until each backend is
// ready for the frontend (InitWait), tears a domain's devices down, and
// removes the nodes of domains that no longer exist. Stateless over the
// XenStore handle it is given; thread-safe as that is.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "platform/xenstore.h"
#include "tools/nvram-tool/toolstack.h"
#include "tools/nvram-tool/vnvram_config.h"

namespace vnvram::tools {

// libxl's /local/domain/D/name (read only; not a vnvram node).
Result<std::optional<std::string>> ReadDomainName(platform::XenStore& xs, DomId d);

// The one introduced domain whose name node is `name`: kNotFound when
// none, kFailedPrecondition when several claim it.
Result<DomId> ResolveDomainName(platform::XenStore& xs, std::string_view name);

// Every path of `config` as an AttachSpec for `frontend` (backend names
// resolved now), in config order.
Result<std::vector<AttachSpec>> ResolveDevices(platform::XenStore& xs, const XlConfig& config,
                                               DomId frontend);

// Attaches each spec in order. A path whose frontend directory exists with
// the same volume and backend is taken as attached already (another
// toolstack path got there first) and is not listed in `attached`; one
// that exists with other values is kAlreadyExists. On error, `attached`
// holds what this call created (for DetachDevices).
Status AttachDevices(platform::XenStore& xs, const std::vector<AttachSpec>& specs,
                     std::vector<AttachSpec>* attached);

// Waits until every spec's backend state is InitWait or later (Initialised,
// Connected): the device is ready for its frontend. kFailedPrecondition,
// naming the device and the backend's error node, when a backend goes to
// Closing or Closed; kTimeout naming the device and its last state;
// kAborted as soon as `stop_fd` (when >= 0) is readable.
Status WaitBackendsReady(platform::XenStore& xs, const std::vector<AttachSpec>& specs,
                         std::chrono::milliseconds timeout, int stop_fd = -1);

// Detaches each spec (forced after `timeout` each); returns the first error.
Status DetachDevices(platform::XenStore& xs, const std::vector<AttachSpec>& specs,
                     std::chrono::milliseconds timeout);

// Frontend domains (not dom0) that have a vnvram frontend directory or a
// vnvram backend directory served to them, and are no longer introduced.
Result<std::vector<DomId>> FindDeadFrontends(platform::XenStore& xs);

// Removes every vnvram node of the dead domain `f`: each backend directory
// served to it (online = 0 and Closing first, waiting up to `timeout` for
// the backends to reach Closed, then removed), its device/vnvram and its
// /local/domain/F/vnvram. Returns how many devices it removed.
Result<size_t> ReapDomain(platform::XenStore& xs, DomId f, std::chrono::milliseconds timeout);

}  // namespace vnvram::tools
