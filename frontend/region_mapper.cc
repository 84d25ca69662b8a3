#include "frontend/region_mapper.h"

#include <cstring>
#include <string>
#include <vector>

#include "vnvram/vnvramif.h"

namespace vnvram::frontend {

Result<MappedRegion> MapRegion(platform::GrantMapper& mapper, DomId backend,
                               const BackendGeometry& geometry, bool writable) {
  if (geometry.dir_refs.empty() || geometry.region_pages == 0) {
    return Status::Corruption("backend geometry lists no pages");
  }
  // The directory is shared memory the backend may still change: copy it
  // once, then parse only the copy (no double fetch).
  std::vector<std::byte> copy(geometry.dir_refs.size() * VNVRAMIF_PAGE_SIZE);
  {
    auto dir = mapper.Map(backend, geometry.dir_refs, /*writable=*/false);
    if (!dir.ok()) return dir.status().WithContext("mapping the page directory");
    std::span<std::byte> d = (*dir)->data();
    if (d.size() < copy.size()) {
      return Status::Corruption("page directory mapping has " + std::to_string(d.size()) +
                                " bytes, expected " + std::to_string(copy.size()));
    }
    std::memcpy(copy.data(), d.data(), copy.size());
  }
  VNVRAM_ASSIGN_OR_RETURN(std::vector<platform::GrantRef> refs,
                          ParsePageDirectory(copy, geometry.region_pages));
  auto region = mapper.Map(backend, refs, writable);
  if (!region.ok()) {
    return region.status().WithContext("mapping the region's " + std::to_string(refs.size()) +
                                       " pages");
  }
  MappedRegion out;
  out.mapping = std::move(region).value();
  std::span<std::byte> all = out.mapping->data();
  if (all.size() < geometry.region_size) {
    return Status::Corruption("region mapping has " + std::to_string(all.size()) +
                              " bytes, expected " + std::to_string(geometry.region_size));
  }
  out.bytes = all.first(geometry.region_size);
  return out;
}

}  // namespace vnvram::frontend
