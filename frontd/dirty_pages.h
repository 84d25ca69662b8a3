// DirtyPages: which pages of a region were stored to since they were last
// made durable, one bit per page (a 1 GiB region costs 32 KiB), so that a
// FLUSH persists what was written and not the whole region. Not
// thread-safe: its owner (DeviceExport) guards it with its own mutex.
#pragma once

#include <cstdint>
#include <vector>

namespace vnvram::frontd {

struct ByteRun {
  uint64_t offset = 0;
  uint64_t length = 0;
  bool operator==(const ByteRun&) const = default;
};

class DirtyPages {
 public:
  // `page_size` is a power of two.
  explicit DirtyPages(uint64_t region_size, uint64_t page_size = 4096);

  // Marks every page that [offset, offset + length) touches (clipped to the
  // region; length 0 marks nothing).
  void Mark(uint64_t offset, uint64_t length);
  // Clears only the pages lying wholly inside [offset, offset + length): a
  // page shared with bytes outside the range may hold other stores.
  void ClearCovered(uint64_t offset, uint64_t length);
  // Every dirty run as a byte range clipped to the region, in order; runs
  // separated by at most `merge_gap_pages` clean pages come out as one
  // (fewer, larger persists). Clears what it returns.
  std::vector<ByteRun> Take(uint64_t merge_gap_pages = 0);

  uint64_t dirty_pages() const { return dirty_; }
  bool empty() const { return dirty_ == 0; }
  uint64_t page_size() const { return page_; }

 private:
  bool Test(uint64_t page) const { return (bits_[page / 64] >> (page % 64)) & 1u; }

  uint64_t size_;
  uint64_t page_;
  uint64_t pages_;
  uint64_t dirty_ = 0;
  std::vector<uint64_t> bits_;
};

}  // namespace vnvram::frontd
