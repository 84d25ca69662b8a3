// libFuzzer entry point for the frontend's reading of what a backend
// published (hostile input): ReadBackendGeometry over an in-memory store
// and ParsePageDirectory over the directory bytes. Input: "key=value"
// lines for the backend directory, a line "--", then the raw directory
// bytes (zero-padded to whole pages). Checks the invariants a successful
// parse promises and that failures are the documented codes; a violation
// aborts. Built with -fsanitize=fuzzer when VNVRAM_FUZZ=ON, else replayed
// as a test by backend/fuzz/fuzz_replay_test.cc. Pure; thread-safe.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "frontend/backend_geometry.h"
#include "vnvram/vnvramif.h"
#include "xenstore-schema/schema.h"

namespace {

using vnvram::Code;
using vnvram::Result;
using vnvram::Status;
namespace platform = vnvram::platform;

[[noreturn]] void Violation(const char* what) {
  std::fprintf(stderr, "backend_geometry_fuzz: invariant violated: %s\n", what);
  std::abort();
}

// Read-only xenstore over a map: all this target needs.
class MapXenStore final : public platform::XenStore {
 public:
  explicit MapXenStore(std::map<std::string, std::string> nodes) : nodes_(std::move(nodes)) {}
  Result<std::string> Read(platform::TxId, std::string_view path) override {
    auto it = nodes_.find(std::string(path));
    if (it == nodes_.end()) return Status::NotFound(std::string(path));
    return it->second;
  }
  Status Write(platform::TxId, std::string_view, std::string_view) override { return No(); }
  Status Mkdir(platform::TxId, std::string_view) override { return No(); }
  Status Remove(platform::TxId, std::string_view) override { return No(); }
  Result<std::vector<std::string>> Directory(platform::TxId, std::string_view) override {
    return No();
  }
  Result<std::vector<platform::PermEntry>> GetPermissions(platform::TxId,
                                                          std::string_view) override {
    return No();
  }
  Status SetPermissions(platform::TxId, std::string_view,
                        std::span<const platform::PermEntry>) override {
    return No();
  }
  Result<platform::TxId> TransactionStart() override { return No(); }
  Status TransactionEnd(platform::TxId, bool) override { return No(); }
  Status Watch(std::string_view, std::string_view) override { return No(); }
  Status Unwatch(std::string_view, std::string_view) override { return No(); }
  int WatchFd() override { return -1; }
  Result<std::optional<platform::WatchEvent>> ReadWatch() override { return No(); }
  Result<std::string> GetDomainPath(vnvram::DomId) override { return No(); }
  Result<bool> IsDomainIntroduced(vnvram::DomId) override { return No(); }

 private:
  static Status No() { return Status::NotSupported("not in this fake"); }
  std::map<std::string, std::string> nodes_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const size_t sep = in.find("\n--\n");
  const std::string_view keys = in.substr(0, sep);
  const std::string_view dir =
      sep == std::string_view::npos ? std::string_view() : in.substr(sep + 4);

  std::map<std::string, std::string> nodes;
  size_t pos = 0;
  while (pos < keys.size()) {
    size_t nl = keys.find('\n', pos);
    if (nl == std::string_view::npos) nl = keys.size();
    const std::string_view line = keys.substr(pos, nl - pos);
    const size_t eq = line.find('=');
    if (eq != std::string_view::npos) {
      nodes[vnvram::schema::BackendKey(0, 1, 0, line.substr(0, eq))] =
          std::string(line.substr(eq + 1));
    }
    pos = nl + 1;
  }
  MapXenStore xs(std::move(nodes));
  auto g = vnvram::frontend::ReadBackendGeometry(xs, platform::kNoTx, 0, 1, 0);
  if (!g.ok()) {
    const Code c = g.status().code();
    if (c != Code::kCorruption && c != Code::kNotFound && c != Code::kNotSupported) {
      Violation("unexpected error code");
    }
    if (g.status().message().empty()) Violation("error without a message");
  } else {
    if (g->max_ring_page_order > VNVRAMIF_MAX_RING_PAGE_ORDER) Violation("ring order");
    if (g->region_pages == 0 || g->region_pages > 262144) Violation("region pages range");
    if (g->region_size != g->region_pages * VNVRAMIF_PAGE_SIZE) Violation("size != pages*4096");
    if (g->dir_refs.size() !=
        (g->region_pages + VNVRAMIF_REFS_PER_DIR_PAGE - 1) / VNVRAMIF_REFS_PER_DIR_PAGE) {
      Violation("directory page count");
    }
    if (!g->feature_persist) Violation("accepted a backend without PERSIST");
  }

  // The directory copy, as many whole pages as the geometry needs (or as
  // the bytes fill), zero-padded.
  const size_t pages =
      g.ok() ? g->dir_refs.size() : std::max<size_t>(1, (dir.size() + 4095) / 4096);
  if (pages > 4) return 0;  // keep inputs cheap; the bound logic is the same
  std::vector<std::byte> copy(pages * VNVRAMIF_PAGE_SIZE);
  for (size_t i = 0; i < dir.size() && i < copy.size(); ++i) {
    copy[i] = static_cast<std::byte>(dir[i]);
  }
  const uint64_t want = g.ok() ? g->region_pages : (dir.empty() ? 1 : uint8_t(dir[0]) + 1);
  auto refs = vnvram::frontend::ParsePageDirectory(copy, want);
  if (refs.ok()) {
    if (refs->size() != want) Violation("ref count");
    std::set<uint32_t> uniq(refs->begin(), refs->end());
    if (uniq.size() != refs->size()) Violation("repeated ref accepted");
  } else if (refs.status().code() != Code::kCorruption) {
    Violation("directory error code");
  }
  return 0;
}
