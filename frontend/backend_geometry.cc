#include "frontend/backend_geometry.h"

#include <string>
#include <unordered_set>

#include "common/endian.h"
#include "vnvram/vnvramif.h"
#include "xenstore-schema/schema.h"

namespace vnvram::frontend {
namespace {

namespace be = schema::be;

Status Bad(std::string_view key, const std::string& value, std::string_view why) {
  return Status::Corruption("backend published " + std::string(key) + " = '" + value +
                            "': " + std::string(why));
}

Result<std::string> ReadKey(platform::XenStore& xs, platform::TxId tx, DomId b, DomId f, DevId dev,
                            std::string_view key) {
  auto v = xs.Read(tx, schema::BackendKey(b, f, dev, key));
  if (!v.ok()) return v.status().WithContext("reading backend " + std::string(key));
  return v;
}

Result<uint64_t> ReadRanged(platform::XenStore& xs, platform::TxId tx, DomId b, DomId f, DevId dev,
                            std::string_view key, uint64_t lo, uint64_t hi) {
  VNVRAM_ASSIGN_OR_RETURN(std::string v, ReadKey(xs, tx, b, f, dev, key));
  auto n = ParseU64InRange(v, lo, hi, key);
  if (!n.ok()) return Bad(key, v, n.status().message());
  return *n;
}

// A feature flag: absent means 0 (the schema default).
Result<bool> ReadFeature(platform::XenStore& xs, platform::TxId tx, DomId b, DomId f, DevId dev,
                         std::string_view key) {
  auto v = xs.Read(tx, schema::BackendKey(b, f, dev, key));
  if (!v.ok()) {
    if (v.status().code() == Code::kNotFound) return false;
    return v.status().WithContext("reading backend " + std::string(key));
  }
  auto flag = ParseBool01(*v, key);
  if (!flag.ok()) return Bad(key, *v, flag.status().message());
  return *flag;
}

}  // namespace

Result<BackendGeometry> ReadBackendGeometry(platform::XenStore& xs, platform::TxId tx, DomId b,
                                            DomId f, DevId dev) {
  BackendGeometry g;
  VNVRAM_ASSIGN_OR_RETURN(
      const uint64_t order,
      ReadRanged(xs, tx, b, f, dev, be::kMaxRingPageOrder, be::kMaxRingPageOrderMin,
                 std::min<uint64_t>(be::kMaxRingPageOrderMax, VNVRAMIF_MAX_RING_PAGE_ORDER)));
  g.max_ring_page_order = static_cast<uint32_t>(order);
  VNVRAM_ASSIGN_OR_RETURN(g.region_size, ReadRanged(xs, tx, b, f, dev, be::kRegionSize,
                                                    be::kRegionSizeMin, be::kRegionSizeMax));
  if (g.region_size % VNVRAMIF_PAGE_SIZE != 0) {
    return Bad(be::kRegionSize, std::to_string(g.region_size), "not a multiple of 4096");
  }
  VNVRAM_ASSIGN_OR_RETURN(g.region_pages, ReadRanged(xs, tx, b, f, dev, be::kRegionPages,
                                                     be::kRegionPagesMin, be::kRegionPagesMax));
  if (g.region_pages * VNVRAMIF_PAGE_SIZE != g.region_size) {
    return Bad(be::kRegionPages, std::to_string(g.region_pages),
               "disagrees with region-size " + std::to_string(g.region_size));
  }
  VNVRAM_ASSIGN_OR_RETURN(
      const uint64_t dirs,
      ReadRanged(xs, tx, b, f, dev, be::kPageDirRefs, be::kPageDirRefsMin, be::kPageDirRefsMax));
  const uint64_t want =
      (g.region_pages + VNVRAMIF_REFS_PER_DIR_PAGE - 1) / VNVRAMIF_REFS_PER_DIR_PAGE;
  if (dirs != want) {
    return Bad(be::kPageDirRefs, std::to_string(dirs),
               "expected " + std::to_string(want) + " for " + std::to_string(g.region_pages) +
                   " region pages");
  }
  g.dir_refs.reserve(dirs);
  for (uint64_t i = 0; i < dirs; ++i) {
    const std::string key = be::PageDirRef(static_cast<uint32_t>(i));
    VNVRAM_ASSIGN_OR_RETURN(std::string v, ReadKey(xs, tx, b, f, dev, key));
    auto ref = ParseU32(v, key);
    if (!ref.ok()) return Bad(key, v, ref.status().message());
    g.dir_refs.push_back(*ref);
  }
  VNVRAM_ASSIGN_OR_RETURN(g.feature_persist, ReadFeature(xs, tx, b, f, dev, be::kFeaturePersist));
  VNVRAM_ASSIGN_OR_RETURN(g.feature_flush, ReadFeature(xs, tx, b, f, dev, be::kFeatureFlush));
  VNVRAM_ASSIGN_OR_RETURN(g.feature_barrier, ReadFeature(xs, tx, b, f, dev, be::kFeatureBarrier));
  VNVRAM_ASSIGN_OR_RETURN(g.feature_copy_mode,
                          ReadFeature(xs, tx, b, f, dev, be::kFeatureCopyMode));
  {
    auto h = xs.Read(tx, schema::BackendKey(b, f, dev, be::kHandshake));
    if (h.ok()) {
      auto v = ParseU64InRange(*h, be::kHandshakeMin, be::kHandshakeMax, be::kHandshake);
      if (!v.ok()) return Bad(be::kHandshake, *h, v.status().message());
      g.handshake = *v;
    } else if (h.status().code() != Code::kNotFound) {
      return h.status().WithContext("reading backend " + std::string(be::kHandshake));
    }
  }
  if (!g.feature_persist) {
    return Status::NotSupported("backend does not offer PERSIST (" +
                                std::string(be::kFeaturePersist) + " is 0)");
  }
  return g;
}

Result<std::vector<platform::GrantRef>> ParsePageDirectory(std::span<const std::byte> copy,
                                                           uint64_t region_pages) {
  if (copy.size() % VNVRAMIF_PAGE_SIZE != 0 || copy.size() / sizeof(uint32_t) < region_pages) {
    return Status::Corruption("page directory of " + std::to_string(copy.size()) +
                              " bytes cannot list " + std::to_string(region_pages) + " pages");
  }
  std::vector<platform::GrantRef> refs;
  refs.reserve(region_pages);
  std::unordered_set<platform::GrantRef> seen;
  seen.reserve(region_pages);
  const size_t entries = copy.size() / sizeof(uint32_t);
  for (size_t i = 0; i < entries; ++i) {
    const uint32_t ref = LoadLE<uint32_t>(copy.data() + i * sizeof(uint32_t));
    if (i >= region_pages) {
      if (ref != 0) {
        return Status::Corruption("page directory entry " + std::to_string(i) +
                                  " past the region's " + std::to_string(region_pages) +
                                  " pages is " + std::to_string(ref) + ", not 0");
      }
      continue;
    }
    if (!seen.insert(ref).second) {
      return Status::Corruption("page directory lists grant ref " + std::to_string(ref) +
                                " twice (entry " + std::to_string(i) + ")");
    }
    refs.push_back(ref);
  }
  return refs;
}

}  // namespace vnvram::frontend
