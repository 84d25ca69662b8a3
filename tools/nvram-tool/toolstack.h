// Toolstack: what `nvram-tool attach|detach|list` do to xenstore, as libxl
// does for its split devices: create a device's frontend and backend
// directories (frontend owned by F with read for B, backend owned by B with
// read for F) with every toolstack key in one transaction; detach through
// online = 0 and backend Closing, wait for the backend's Closed, remove
// both directories (and the per-type parents left empty); list devices.
// Stateless over the XenStore handle it is given; thread-safe as that is.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/parse.h"
#include "common/result.h"
#include "platform/xenstore.h"

namespace vnvram::tools {

struct AttachSpec {
  DomId frontend = 0;
  DomId backend = 0;
  DevId dev = 0;
  Uuid volume;
  uint64_t size = 0;  // bytes, 4 KiB multiple within the schema's range
};

// kInvalidArgument for a bad spec, kAlreadyExists when either directory
// exists.
Status Attach(platform::XenStore& xs, const AttachSpec& spec);

struct DetachOptions {
  std::chrono::milliseconds timeout{10000};
  // Remove the directories even when the backend did not reach Closed.
  bool force = false;
};

// kNotFound when the device does not exist; kTimeout (directories left in
// place) when the backend did not close in time and !force.
Status Detach(platform::XenStore& xs, DomId frontend, DevId dev, const DetachOptions& options);

struct DeviceListing {
  DomId frontend = 0;
  DevId dev = 0;
  std::optional<DomId> backend;
  std::string volume;
  std::string frontend_state;  // state name, or "?" for a bad value
  std::string backend_state;
  std::string online;
  std::optional<uint64_t> region_size;
  std::optional<uint64_t> durable_seq;
  std::string error;  // backend error node, or ""
};

// Every vnvram device of every domain (dom0 view), by (frontend, dev).
Result<std::vector<DeviceListing>> List(platform::XenStore& xs);

}  // namespace vnvram::tools
