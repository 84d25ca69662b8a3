#include "frontd/dirty_pages.h"

#include <algorithm>
#include <bit>

namespace vnvram::frontd {

DirtyPages::DirtyPages(uint64_t region_size, uint64_t page_size)
    : size_(region_size),
      page_(page_size),
      pages_((region_size + page_size - 1) / page_size),
      bits_((pages_ + 63) / 64, 0) {}

void DirtyPages::Mark(uint64_t offset, uint64_t length) {
  if (length == 0 || offset >= size_) return;
  const uint64_t end = offset + std::min(length, size_ - offset);
  for (uint64_t p = offset / page_; p <= (end - 1) / page_; ++p) {
    uint64_t& w = bits_[p / 64];
    const uint64_t bit = uint64_t{1} << (p % 64);
    if ((w & bit) == 0) {
      w |= bit;
      ++dirty_;
    }
  }
}

void DirtyPages::ClearCovered(uint64_t offset, uint64_t length) {
  if (length == 0 || offset >= size_) return;
  const uint64_t end = offset + std::min(length, size_ - offset);
  const uint64_t first = (offset + page_ - 1) / page_;
  // The region's last page counts as covered when the range reaches the
  // region's end, even if the region is not a whole number of pages.
  const uint64_t last_excl = end == size_ ? pages_ : end / page_;
  for (uint64_t p = first; p < last_excl; ++p) {
    uint64_t& w = bits_[p / 64];
    const uint64_t bit = uint64_t{1} << (p % 64);
    if ((w & bit) != 0) {
      w &= ~bit;
      --dirty_;
    }
  }
}

std::vector<ByteRun> DirtyPages::Take(uint64_t merge_gap_pages) {
  std::vector<ByteRun> runs;
  if (dirty_ == 0) return runs;
  uint64_t p = 0;
  while (p < pages_) {
    // Skip clean words quickly.
    if ((p % 64) == 0 && bits_[p / 64] == 0) {
      p += 64;
      continue;
    }
    if (!Test(p)) {
      ++p;
      continue;
    }
    const uint64_t start = p;
    while (p < pages_ && Test(p)) ++p;
    const uint64_t off = start * page_;
    const uint64_t end = std::min(p * page_, size_);
    if (!runs.empty() &&
        off - (runs.back().offset + runs.back().length) <= merge_gap_pages * page_) {
      runs.back().length = end - runs.back().offset;
    } else {
      runs.push_back(ByteRun{off, end - off});
    }
  }
  std::fill(bits_.begin(), bits_.end(), 0);
  dirty_ = 0;
  return runs;
}

}  // namespace vnvram::frontd
