#include "backend/volume_region.h"

#include "common/endian.h"
#include "vnvram/vnvramif.h"

namespace vnvram::backend {

Result<std::pair<std::unique_ptr<platform::SharedPages>, std::unique_ptr<platform::SharedPages>>>
VolumeRegion::SharePages(platform::GrantSharer& sharer, DomId grantee, uint64_t pages) {
  if (pages == 0) return Status::InvalidArgument("region of 0 pages");
  auto region = sharer.Share(grantee, pages, /*writable=*/true);
  if (!region.ok()) {
    return region.status().WithContext("share " + std::to_string(pages) + " region pages");
  }
  if ((*region)->refs().size() != pages || (*region)->data().size() < pages * platform::kPageSize) {
    return Status::Internal("grant sharer returned the wrong number of pages");
  }
  const uint64_t dir_pages = (pages + VNVRAMIF_REFS_PER_DIR_PAGE - 1) / VNVRAMIF_REFS_PER_DIR_PAGE;
  auto dir = sharer.Share(grantee, dir_pages, /*writable=*/false);
  if (!dir.ok()) {
    return dir.status().WithContext("share " + std::to_string(dir_pages) + " page-directory pages");
  }
  // Directory entry k (little-endian uint32) is the ref of region page k;
  // the tail of the last page stays zero.
  std::span<std::byte> d = (*dir)->data();
  std::span<const platform::GrantRef> refs = (*region)->refs();
  for (uint64_t k = 0; k < pages; ++k) {
    StoreLE<uint32_t>(d.data() + k * sizeof(uint32_t), refs[k]);
  }
  return std::make_pair(std::move(*region), std::move(*dir));
}

Result<std::unique_ptr<VolumeRegion>> VolumeRegion::Create(platform::GrantSharer& sharer,
                                                           const Uuid& volume, DomId grantee,
                                                           uint64_t pages, uint64_t start_seq,
                                                           bool from_vault) {
  auto shared = SharePages(sharer, grantee, pages);
  if (!shared.ok()) return shared.status();
  return std::unique_ptr<VolumeRegion>(
      new VolumeRegion(volume, pages * platform::kPageSize, std::move(shared->first),
                       std::move(shared->second), start_seq, from_vault));
}

Result<std::unique_ptr<VolumeRegion>> VolumeRegion::CreateWithSink(platform::GrantSharer& sharer,
                                                                   const Uuid& volume,
                                                                   DomId grantee, uint64_t pages,
                                                                   const SinkFactory& make_sink) {
  auto shared = SharePages(sharer, grantee, pages);
  if (!shared.ok()) return shared.status();
  std::unique_ptr<VolumeRegion> r(new VolumeRegion(
      volume, pages * platform::kPageSize, std::move(shared->first), std::move(shared->second)));
  auto sink = make_sink(r->bytes());
  if (!sink.ok()) return sink.status();
  r->sink_ = std::move(sink).value();
  r->external_sink_ = true;
  return r;
}

}  // namespace vnvram::backend
