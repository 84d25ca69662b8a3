// RegionMapper: maps a device's region the way the backend published it:
// the page-directory pages read-only, a private copy of them parsed
// strictly (bounded by region-pages), then the region pages as one
// contiguous mapping. Owns nothing but what it returns; thread-safe as the
// GrantMapper it is given. A MappedRegion is owned by one thread at a time
// and unmaps in its destructor.
#pragma once

#include <cstddef>
#include <memory>
#include <span>

#include "common/result.h"
#include "frontend/backend_geometry.h"
#include "platform/grant.h"

namespace vnvram::frontend {

struct MappedRegion {
  std::unique_ptr<platform::GrantMapping> mapping;
  std::span<std::byte> bytes;  // exactly region_size bytes of `mapping`
};

// kCorruption when the directory fails ParsePageDirectory or the mapping is
// shorter than the region; the mapper's error (kPermissionDenied,
// kNotFound, ...) with context when a ref cannot be mapped.
Result<MappedRegion> MapRegion(platform::GrantMapper& mapper, DomId backend,
                               const BackendGeometry& geometry, bool writable);

}  // namespace vnvram::frontend
