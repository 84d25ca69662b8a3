// DirtyHistory: which resync chunks the recent sequences of one volume
// wrote, so a primary can resync a replica that fell behind within the
// current epoch from the chunks dirtied since its sequence instead of a full
// copy (docs/replication.md, "Resync"). Not thread-safe: the engine calls it
// under its volume mutex.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

namespace vnvram::replication {

class DirtyHistory {
 public:
  inline static constexpr size_t kDefaultMaxEntries = 65536;

  // Preconditions (asserted; the cluster file guarantees them): region_size
  // > 0, chunk_size a power of two, ceil(region_size / chunk_size) fits in
  // uint32_t. Keeps at most `max_entries` recorded ranges, dropping the
  // oldest first. Starts empty, covering every sequence > 0.
  DirtyHistory(uint64_t region_size, uint32_t chunk_size, size_t max_entries = kDefaultMaxEntries);

  // Sequence `seq` wrote [offset, offset + length). Preconditions
  // (asserted): length > 0, the range inside the region, seq >= every seq
  // recorded before (several calls may share one seq). A release build
  // handles a violation without ever under-reporting: the range is clipped
  // to the region, an empty range records nothing, and a smaller seq is
  // recorded as latest_seq(). A seq <= base_seq() is already accounted for
  // by the base and is not stored. Consecutive ranges of one seq that
  // overlap or touch are merged into one entry.
  void Record(uint64_t seq, uint64_t offset, uint64_t length);

  // Sorted, de-duplicated indices of the chunks written by every sequence
  // > since. std::nullopt when the history no longer covers all of
  // (since, latest_seq()] (since < base_seq(), because entries were dropped
  // or the history was reset past it): the caller must do a full copy.
  // since >= latest_seq() gives an empty vector. O(entries newer than since
  // + chunk_count() / 64).
  std::optional<std::vector<uint32_t>> ChunksSince(uint64_t since) const;

  // Forgets everything; the history now covers sequences > base_seq and
  // latest_seq() == base_seq (a new epoch, or content adopted by resync).
  void Reset(uint64_t base_seq);

  // Every sequence > base_seq() and <= latest_seq() is fully recorded.
  uint64_t base_seq() const { return base_seq_; }
  // The highest sequence recorded (or the base, when none was since).
  uint64_t latest_seq() const { return latest_seq_; }
  uint32_t chunk_size() const { return chunk_size_; }
  // ceil(region_size / chunk_size).
  uint32_t chunk_count() const { return chunk_count_; }
  // Number of ranges held (for tests and statistics).
  size_t entry_count() const { return entries_.size(); }

 private:
  // The chunks [first, last] written by sequence `seq`.
  struct Entry {
    uint64_t seq;
    uint32_t first;
    uint32_t last;
  };

  // Constant after construction.
  uint64_t region_size_;
  uint32_t chunk_size_;
  uint32_t chunk_shift_;  // log2(chunk_size_)
  uint32_t chunk_count_;
  size_t max_entries_;

  // Ascending seq; every entry has seq > base_seq_ and <= latest_seq_.
  std::deque<Entry> entries_;
  uint64_t base_seq_ = 0;
  uint64_t latest_seq_ = 0;
};

}  // namespace vnvram::replication
