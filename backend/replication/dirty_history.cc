#include "backend/replication/dirty_history.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <limits>

namespace vnvram::replication {

namespace {

constexpr uint32_t kWordBits = 64;

// Sets bits [first, last] of `bits`, a word at a time.
void SetBits(std::vector<uint64_t>& bits, uint32_t first, uint32_t last) {
  const uint32_t fw = first / kWordBits;
  const uint32_t lw = last / kWordBits;
  const uint64_t first_mask = ~uint64_t{0} << (first % kWordBits);
  const uint64_t last_mask = ~uint64_t{0} >> (kWordBits - 1 - last % kWordBits);
  if (fw == lw) {
    bits[fw] |= first_mask & last_mask;
    return;
  }
  bits[fw] |= first_mask;
  for (uint32_t w = fw + 1; w < lw; ++w) bits[w] = ~uint64_t{0};
  bits[lw] |= last_mask;
}

}  // namespace

DirtyHistory::DirtyHistory(uint64_t region_size, uint32_t chunk_size, size_t max_entries)
    : region_size_(region_size),
      chunk_size_(chunk_size),
      chunk_shift_(static_cast<uint32_t>(std::countr_zero(chunk_size))),
      chunk_count_(0),
      max_entries_(max_entries) {
  assert(region_size > 0 && "DirtyHistory: empty region");
  assert(std::has_single_bit(chunk_size) && "DirtyHistory: chunk size is not a power of two");
  // countr_zero(0) == 32, so a zero chunk size cannot shift out of range.
  const uint64_t count = region_size == 0 ? 0 : ((region_size - 1) >> chunk_shift_) + 1;
  assert(count <= std::numeric_limits<uint32_t>::max() && "DirtyHistory: too many chunks");
  chunk_count_ =
      static_cast<uint32_t>(std::min<uint64_t>(count, std::numeric_limits<uint32_t>::max()));
}

void DirtyHistory::Record(uint64_t seq, uint64_t offset, uint64_t length) {
  assert(seq >= latest_seq_ && "DirtyHistory: sequence went backwards");
  assert(length > 0 && offset < region_size_ && length <= region_size_ - offset &&
         "DirtyHistory: range outside the region");
  // Recording under a later sequence only ever adds chunks to an answer.
  seq = std::max(seq, latest_seq_);
  if (seq <= base_seq_) return;
  latest_seq_ = seq;
  if (length == 0 || offset >= region_size_ || chunk_count_ == 0) return;
  const uint64_t end = offset + std::min(length, region_size_ - offset);  // exclusive
  const auto first =
      static_cast<uint32_t>(std::min<uint64_t>(offset >> chunk_shift_, chunk_count_ - 1));
  const auto last =
      static_cast<uint32_t>(std::min<uint64_t>((end - 1) >> chunk_shift_, chunk_count_ - 1));

  // A persist often arrives as several ranges of one sequence, and
  // neighbouring writes often hit the same chunk: merge them.
  if (!entries_.empty()) {
    Entry& back = entries_.back();
    if (back.seq == seq && uint64_t{first} <= uint64_t{back.last} + 1 &&
        uint64_t{last} + 1 >= uint64_t{back.first}) {
      back.first = std::min(back.first, first);
      back.last = std::max(back.last, last);
      return;
    }
  }
  entries_.push_back(Entry{seq, first, last});

  // Dropping an entry of sequence s means s is no longer fully recorded:
  // the history then covers only sequences > s, and any other entry of s
  // (or older) is useless.
  bool dropped = false;
  while (entries_.size() > max_entries_) {
    base_seq_ = std::max(base_seq_, entries_.front().seq);
    entries_.pop_front();
    dropped = true;
  }
  if (dropped) {
    while (!entries_.empty() && entries_.front().seq <= base_seq_) entries_.pop_front();
  }
}

std::optional<std::vector<uint32_t>> DirtyHistory::ChunksSince(uint64_t since) const {
  if (since >= latest_seq_) return std::vector<uint32_t>{};
  if (since < base_seq_) return std::nullopt;

  std::vector<uint64_t> bits((uint64_t{chunk_count_} + kWordBits - 1) / kWordBits, 0);
  auto it = std::upper_bound(entries_.begin(), entries_.end(), since,
                             [](uint64_t s, const Entry& e) { return s < e.seq; });
  for (; it != entries_.end(); ++it) SetBits(bits, it->first, it->last);

  size_t count = 0;
  for (uint64_t w : bits) count += static_cast<size_t>(std::popcount(w));
  std::vector<uint32_t> chunks;
  chunks.reserve(count);
  for (size_t i = 0; i < bits.size(); ++i) {
    for (uint64_t w = bits[i]; w != 0; w &= w - 1) {
      chunks.push_back(static_cast<uint32_t>(i * kWordBits) +
                       static_cast<uint32_t>(std::countr_zero(w)));
    }
  }
  return chunks;
}

void DirtyHistory::Reset(uint64_t base_seq) {
  entries_.clear();
  entries_.shrink_to_fit();
  base_seq_ = base_seq;
  latest_seq_ = base_seq;
}

}  // namespace vnvram::replication
