// The libxenstore implementation of platform::XenStore. This is also the
// client the sim platform uses: the real library, pointed at the sim
// xenstored's Unix socket. Thread-safety as in platform/xenstore.h.
#pragma once

#include <memory>
#include <string>

#include "common/result.h"
#include "platform/xenstore.h"

namespace vnvram::xen {

// Opens libxenstore on its default transport (/dev/xen/xenbus or the
// xenstored socket; honours XENSTORED_PATH as libxenstore does).
Result<std::unique_ptr<platform::XenStore>> OpenXenStore();

// Opens libxenstore on the Unix socket at `socket_path` (the sim daemon's
// `DIR/socket` or `DIR/domain/<N>`).
Result<std::unique_ptr<platform::XenStore>> OpenXenStoreAt(const std::string& socket_path);

}  // namespace vnvram::xen
