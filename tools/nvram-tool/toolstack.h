// Toolstack: what `nvram-tool attach|detach|list` do to xenstore, as libxl
// does for its split devices: create a device's frontend and backend
// directories (frontend owned by F with read for B, backend owned by B with
// read for F) with every toolstack key in one transaction, together with
// the per-domain vnvram directories multipath needs (F's vnvram directory
// and the volume's multipath directory owned by F, B's vnvram directory
// owned by B) when they are missing; detach through online = 0 and backend
// Closing, wait for the backend's Closed, remove both directories (and the
// per-type parents left empty, and the volume's multipath directory once no
// path of F leads to the volume); list devices.
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
  // fe path-priority (0..255); not written when absent (the schema's
  // default 0 applies).
  std::optional<uint32_t> priority;
};

// kInvalidArgument for a bad spec, kAlreadyExists when either directory
// exists. Also creates, when absent: DomainVnvramDir(F) and
// MultipathDir(F, volume) (and the multipath parent between them) owned by
// F, and DomainVnvramDir(B) owned by B (where B's vnvramd publishes its
// daemon and replication keys; a domain cannot create nodes under its own
// /local/domain/N on Xen). Existing ones are left as they are.
Status Attach(platform::XenStore& xs, const AttachSpec& spec);

struct DetachOptions {
  std::chrono::milliseconds timeout{10000};
  // Remove the directories even when the backend did not reach Closed.
  bool force = false;
};

// kNotFound when the device does not exist; kTimeout (directories left in
// place) when the backend did not close in time and !force. Once the device
// is removed, MultipathDir(F, volume) goes too when no other path of F names
// the volume, then the multipath parent and DomainVnvramDir(F) when empty.
// DomainVnvramDir(B) stays: it is B's vnvramd's home.
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

// The parent of every MultipathDir(f, vol) (the schema has a builder for
// each volume's directory only).
std::string MultipathRoot(DomId f);

// Whether some path (frontend directory) of domain `f` names `volume`.
Result<bool> VolumeHasPath(platform::XenStore& xs, platform::TxId tx, DomId f, const Uuid& volume);

}  // namespace vnvram::tools
