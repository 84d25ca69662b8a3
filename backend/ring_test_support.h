// Test-only helpers for the ring data plane: page-aligned memory fenced by
// inaccessible guard pages (an out-of-bounds access faults instead of
// passing silently), and a SegmentMapper over a plain in-memory "grant
// table". Not thread-safe unless stated; used by one test at a time.
#pragma once

#include <sys/mman.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "backend/persist_sink.h"
#include "backend/segment_mapper.h"
#include "platform/grant.h"
#include "vnvram/vnvramif.h"

namespace vnvram::backend::testing {

// `pages` pages of zeroed read-write memory with one PROT_NONE page on each
// side.
class GuardedPages {
 public:
  explicit GuardedPages(size_t pages) : pages_(pages) {
    const size_t total = (pages + 2) * VNVRAMIF_PAGE_SIZE;
    void* p = mmap(nullptr, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return;
    base_ = static_cast<std::byte*>(p);
    if (pages > 0 &&
        mprotect(base_ + VNVRAMIF_PAGE_SIZE, pages * VNVRAMIF_PAGE_SIZE, PROT_READ | PROT_WRITE)) {
      munmap(base_, total);
      base_ = nullptr;
    }
  }
  ~GuardedPages() {
    if (base_) munmap(base_, (pages_ + 2) * VNVRAMIF_PAGE_SIZE);
  }
  GuardedPages(const GuardedPages&) = delete;
  GuardedPages& operator=(const GuardedPages&) = delete;

  bool ok() const { return base_ != nullptr; }
  std::span<std::byte> span() {
    return {base_ ? base_ + VNVRAMIF_PAGE_SIZE : nullptr, pages_ * VNVRAMIF_PAGE_SIZE};
  }
  std::byte* page(size_t i) { return span().data() + i * VNVRAMIF_PAGE_SIZE; }

 private:
  size_t pages_;
  std::byte* base_ = nullptr;
};

// A mapping made by FakeSegmentMapper: the granted pages copied into fresh
// guarded memory, copied back on unmap when writable (what a real mapping
// would have changed in place).
class FakeMapping final : public platform::GrantMapping {
 public:
  FakeMapping(std::vector<std::byte*> backing, bool writable, std::atomic<int>* live)
      : backing_(std::move(backing)), writable_(writable), mem_(backing_.size()), live_(live) {
    for (size_t i = 0; i < backing_.size(); ++i) {
      std::memcpy(mem_.page(i), backing_[i], VNVRAMIF_PAGE_SIZE);
    }
    ++*live_;
  }
  ~FakeMapping() override {
    if (writable_) {
      for (size_t i = 0; i < backing_.size(); ++i) {
        std::memcpy(backing_[i], mem_.page(i), VNVRAMIF_PAGE_SIZE);
      }
    }
    --*live_;
  }
  std::span<std::byte> data() override { return mem_.span(); }
  DomId granter() const override { return 1; }

 private:
  std::vector<std::byte*> backing_;
  bool writable_;
  GuardedPages mem_;
  std::atomic<int>* live_;
};

// Grant ref r (1 <= r <= pages) names page r - 1 of `granted`; anything else
// is "not granted to us".
class FakeSegmentMapper final : public SegmentMapper {
 public:
  explicit FakeSegmentMapper(size_t pages) : granted(pages), pages_(pages) {}

  Result<std::unique_ptr<platform::GrantMapping>> Map(std::span<const platform::GrantRef> refs,
                                                      bool writable) override {
    ++maps;
    if (refs.size() > max_refs_seen) max_refs_seen = refs.size();
    if (on_map) on_map();
    std::vector<std::byte*> backing;
    for (platform::GrantRef r : refs) {
      if (r == 0 || r > granted_pages()) {
        return Status::PermissionDenied("grant ref " + std::to_string(r) + " not granted");
      }
      backing.push_back(granted.page(r - 1));
    }
    return std::unique_ptr<platform::GrantMapping>(
        new FakeMapping(std::move(backing), writable, &live_mappings));
  }
  size_t granted_pages() const { return pages_; }

  GuardedPages granted;
  std::function<void()> on_map;  // runs inside Map(), before mapping
  std::atomic<int> live_mappings{0};
  uint64_t maps = 0;
  size_t max_refs_seen = 0;

 private:
  size_t pages_;
};

// A sink that records each batch, checks it against the region, and can be
// told to fail or to run a hook.
class RecordingSink final : public PersistSink {
 public:
  explicit RecordingSink(uint64_t region_size) : region_size_(region_size) {}
  Result<uint64_t> Persist(uint64_t offset, uint64_t length) override {
    ByteRange r{offset, length};
    return PersistBatch({&r, 1});
  }
  Result<uint64_t> PersistBatch(std::span<const ByteRange> ranges) override {
    ++calls;
    if (on_persist) on_persist();
    for (const ByteRange& r : ranges) {
      if (r.offset > region_size_ || r.length > region_size_ - r.offset) ++out_of_bounds;
      batches_ranges += 1;
    }
    last_batch.assign(ranges.begin(), ranges.end());
    if (fail) return fail_status;
    return ++seq;
  }
  uint64_t DurableSeq() const override { return seq; }

  uint64_t seq = 0;
  uint64_t calls = 0;
  uint64_t batches_ranges = 0;
  uint64_t out_of_bounds = 0;
  bool fail = false;
  Status fail_status = Status::IoError("sink failed");  // what a failing call returns
  std::function<void()> on_persist;
  std::vector<ByteRange> last_batch;

 private:
  uint64_t region_size_;
};

}  // namespace vnvram::backend::testing
