// BackendGeometry: what a backend publishes about a device's region and
// features before going InitWait, read from xenstore and range-checked as
// hostile input (the hardened blkfront's rule: distrust the backend), plus
// the strict parser of the page-directory pages. Pure functions over a
// XenStore handle and byte copies; thread-safe as the handle is.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/parse.h"
#include "common/result.h"
#include "platform/grant.h"
#include "platform/xenstore.h"

namespace vnvram::frontend {

struct BackendGeometry {
  uint32_t max_ring_page_order = 0;          // <= VNVRAMIF_MAX_RING_PAGE_ORDER
  uint64_t region_size = 0;                  // bytes, region_pages * 4096
  uint64_t region_pages = 0;                 // [1, kRegionPagesMax]
  std::vector<platform::GrantRef> dir_refs;  // ceil(region_pages / 1024) refs
  bool feature_persist = false;
  bool feature_flush = false;
  bool feature_barrier = false;
  bool feature_copy_mode = false;
  // The publication's `handshake` value; nullopt from an older backend that
  // writes none.
  std::optional<uint64_t> handshake;
};

// Reads and checks the backend's keys of device (B, F, dev) inside `tx`:
// every number strict decimal within the schema's range, region-size ==
// region-pages * 4096, page-dir-refs == ceil(region-pages / 1024), one
// page-dir-ref-<i> per directory page. kCorruption names the bad key and
// value; kNotFound when a required key is absent.
Result<BackendGeometry> ReadBackendGeometry(platform::XenStore& xs, platform::TxId tx, DomId b,
                                            DomId f, DevId dev);

// Parses a private copy of the directory pages (dir_refs.size() * 4096
// bytes): region_pages little-endian refs in region order, every entry
// after them zero, no ref repeated. kCorruption otherwise.
Result<std::vector<platform::GrantRef>> ParsePageDirectory(std::span<const std::byte> copy,
                                                           uint64_t region_pages);

}  // namespace vnvram::frontend
