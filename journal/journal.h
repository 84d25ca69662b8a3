// Journal: a circular log of checksummed records in a vnvram region, in the
// format of docs/journal-format.md: append (not yet durable), commit (one
// persist of what was appended since the last commit), trim (a new head in
// the other superblock slot) and, at open, replay of the committed prefix.
// The region and the persist call are given (libvnvram's Device, or memory
// in tests). Not thread-safe: one writer per journal.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "common/result.h"

namespace vnvram::journal {

// Makes region bytes [offset, offset + length) durable.
using PersistFn = std::function<Status(uint64_t offset, uint64_t length)>;

struct Record {
  uint64_t sequence = 0;
  uint64_t timestamp_ns = 0;
  std::span<const std::byte> payload;  // valid during the callback
};
using RecordFn = std::function<void(const Record&)>;

// What Open() found (docs/journal-format.md, "Damage and what Open
// reports"). Replay stops at the first bytes that do not continue the log.
// A damaged record there is a torn last commit, or damage inside the
// committed records: `lost_commits()` tells them apart when at least two
// later commits of this journal survive beyond it.
struct ReplayStats {
  enum class End {
    kLogFull,   // committed records fill the log
    kNoRecord,  // no header, or a whole record of an older lap or another life
    kDamaged,   // a header whose type, length or CRC is wrong: torn or damaged
  };
  End end = End::kNoRecord;
  std::string end_detail;       // one line: where and why replay stopped
  uint64_t end_offset = 0;      // logical offset where replay stopped
  uint64_t records = 0;         // committed records returned
  uint64_t uncommitted = 0;     // whole records after the last commit, dropped
  int valid_slots = 2;          // superblock slots that passed their checks
  uint64_t commits_beyond = 0;  // kDamaged: commit records of this log past it
  uint32_t incarnation = 0;     // this life's, raised by Open()
  // Records whose Commit() returned were lost: damage inside the committed
  // log (a torn last commit leaves at most one commit beyond the end).
  bool lost_commits() const { return commits_beyond >= 2; }
};

inline constexpr uint64_t kLogOffset = 4096;
inline constexpr uint64_t kHeaderSize = 40;
// A record's payload is at most this long (and at most the log's size).
inline constexpr uint32_t kMaxPayload = 16u << 20;

class Journal {
 public:
  // Writes an empty journal (both superblock slots) over `region` and
  // persists it. kInvalidArgument when the region is under 8 KiB or not a
  // multiple of 8 bytes.
  static Status Format(std::span<std::byte> region, const PersistFn& persist,
                       const std::array<std::byte, 16>& uuid);
  // Opens a formatted region and replays it: `on_record` gets every
  // committed record from the head, in order. kCorruption when neither
  // superblock slot is valid or the valid one describes another region or
  // an impossible head; otherwise OK, and replay_stats() says where replay
  // stopped and whether committed records were lost there.
  static Result<std::unique_ptr<Journal>> Open(std::span<std::byte> region, PersistFn persist,
                                               const RecordFn& on_record);

  // Appends a record after the tail; returns its sequence number. Not
  // durable until Commit(). kResourceExhausted when it does not fit in the
  // free part of the log (trim first); kInvalidArgument when it is larger
  // than the log or kMaxPayload.
  Result<uint64_t> Append(std::span<const std::byte> payload, uint64_t timestamp_ns);
  // Makes every record appended so far durable, as one batch: after a
  // crash, replay returns all of them or none. No-op when nothing is new.
  Status Commit();
  // Drops the committed records up to and including `sequence` from the
  // head. kOutOfRange when `sequence` is not committed.
  Status Trim(uint64_t sequence);

  // For a journal on a mapping that moves (libvnvram's Device after a
  // re-map): from now on reads and stores go to `region`, which must hold
  // the same bytes at a new address. kInvalidArgument when its size differs.
  Status Rebind(std::span<std::byte> region);
  // True when Append() of payloads of these sizes, in order, would all
  // succeed now (room in the log, each size allowed).
  bool Fits(std::span<const size_t> payload_sizes) const;

  uint64_t head_sequence() const { return head_seq_; }
  uint64_t next_sequence() const { return next_seq_; }
  uint64_t committed_sequence() const { return next_seq_ - 1 - pending_; }
  uint64_t log_size() const { return log_size_; }
  // Bytes of the log that live records (committed or not) do not hold.
  uint64_t free_bytes() const { return log_size_ - (tail_ - head_); }
  const ReplayStats& replay_stats() const { return stats_; }

 private:
  Journal(std::span<std::byte> region, PersistFn persist)
      : region_(region), persist_(std::move(persist)) {}
  struct Seen;
  Seen Examine(uint64_t at, uint64_t expect, uint32_t min_inc, uint32_t max_inc) const;
  Status Replay(const RecordFn& on_record, uint32_t max_incarnation);
  uint64_t CommitsBeyond(uint64_t from, uint64_t expect, uint32_t min_inc, uint32_t max_inc) const;
  Status WriteSuperblock(uint64_t head, uint64_t head_seq, uint32_t head_inc);
  Status PersistLogical(uint64_t from, uint64_t to);
  uint64_t Physical(uint64_t logical) const { return kLogOffset + logical % log_size_; }

  std::span<std::byte> region_;
  PersistFn persist_;
  std::array<std::byte, 16> uuid_{};
  uint64_t log_size_ = 0;
  uint64_t generation_ = 0;
  uint32_t incarnation_ = 0;  // raised by every Open(); records carry it
  uint64_t head_ = 0;         // logical offset of the first live record
  uint64_t head_seq_ = 1;     // its sequence
  uint32_t head_inc_ = 0;     // the lowest incarnation it may carry
  uint64_t tail_ = 0;         // logical offset after the last appended record
  uint64_t next_seq_ = 1;     // sequence of the next append
  uint64_t committed_ = 0;    // logical offset after the last committed record
  uint64_t pending_ = 0;      // records appended since the last commit
  // The last appended record: its logical offset and its payload's CRC
  // (Commit() sets its commit flag and rewrites its CRC).
  uint64_t last_offset_ = 0;
  uint32_t last_payload_crc_ = 0;
  // (sequence, logical offset) of every live record, for Trim().
  std::deque<std::pair<uint64_t, uint64_t>> index_;
  ReplayStats stats_;
};

}  // namespace vnvram::journal
