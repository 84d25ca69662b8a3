// vnvram::Journal: the journal library on a vnvram::Device (issue 8): a
// circular log of checksummed, time-stamped records in the device region
// [offset, offset + length), in the format of docs/journal-format.md.
// append() stores a record (not durable yet), commit() makes everything
// appended since the last commit durable with one persist, trim() drops
// records from the head, and open() replays the committed prefix. The
// journal follows the Device's mapping when it moves (a backend restart or
// a failover: Device::generation() grows): it takes region() again before
// it stores, never into a stale mapping. docs/journal.md has the details.
//
// Thread-safety: a Journal is not thread-safe (one thread at a time); for
// several writers use vnvram::JournalWriter (journal_writer.hpp). The
// Device may be shared with other users of other byte ranges. Errors are
// vnvram::Status values; nothing throws (except std::bad_alloc).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "common/result.h"
#include "common/status.h"
#include "vnvram/vnvram.hpp"

namespace vnvram {

namespace journal {
class Journal;  // the format's core (journal/journal.h)
}  // namespace journal

using JournalUuid = std::array<std::byte, 16>;

struct JournalRecord {
  uint64_t sequence = 0;               // 1, 2, ... in append order, never reused
  uint64_t timestamp_ns = 0;           // wall clock at append, ns since the Unix epoch
  std::span<const std::byte> payload;  // valid during the callback only
};
// Gets each replayed record in order. It must not call the Device.
using JournalRecordFn = std::function<void(const JournalRecord&)>;

// What open() found where replay stopped (docs/journal-format.md, "Damage
// and what Open reports").
struct JournalReplayReport {
  uint64_t records = 0;      // committed records replayed
  uint64_t uncommitted = 0;  // whole records after the last commit, dropped
  // Replay stopped at a record that is there but fails its checks (type,
  // length or CRC), not at the end of what was written.
  bool damaged = false;
  // Records whose commit had returned were lost to that damage (two or
  // more later commits of this journal survive past it). A crash alone
  // never causes this: the caller should treat the journal as corrupt.
  bool lost_commits = false;
  int valid_superblocks = 2;  // slots that passed their checks (1 or 2)
  std::string detail;         // one line: where and why replay stopped
};

class Journal {
 public:
  // A journal needs at least this many bytes (two superblock slots and a
  // log of 4 KiB); offset and length are multiples of 8.
  static constexpr uint64_t kMinLength = 8192;
  // The largest payload of one record (and at most the log's size).
  static constexpr uint32_t kMaxPayload = 16u << 20;

  // Writes an empty journal over [offset, offset + length) of the device
  // and persists it; whatever the range held is gone. kInvalidArgument for
  // a range outside the region, unaligned, or under kMinLength.
  static Status Format(Device& device, uint64_t offset, uint64_t length, const JournalUuid& uuid);
  // Opens the journal in [offset, offset + length) and replays it:
  // `on_record` (may be empty) gets every committed record from the head,
  // in order; uncommitted and torn records after them are dropped and will
  // be overwritten. Open writes (and persists) the superblock once.
  // kCorruption when the range holds no journal or one of another size.
  static Result<std::unique_ptr<Journal>> Open(Device& device, uint64_t offset, uint64_t length,
                                               const JournalRecordFn& on_record);
  // Uncommitted records are not committed (they are dropped at the next
  // open). The Device stays open.
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // Stores a record after the tail; returns its sequence number. Not
  // durable until commit(). kResourceExhausted when the log has no room
  // for it (trim first); kInvalidArgument when it is larger than the log
  // or kMaxPayload; kUnavailable when the device has no mapping.
  Result<uint64_t> append(std::span<const std::byte> payload);
  // Stores every payload as consecutive records, or none of them (same
  // errors); returns the sequence number of the first. Empty: kInvalidArgument.
  Result<uint64_t> append_batch(std::span<const std::span<const std::byte>> payloads);
  // Makes every record appended so far durable with one persist (two when
  // the log wrapped): after a crash a replay returns all of them or none.
  // No-op when nothing is new. On error the records stay appended; their
  // outcome is unknown (a later commit() retries them).
  Status commit();
  // Drops the committed records up to and including `sequence` (one small
  // persist). kOutOfRange when `sequence` is not committed; a sequence
  // below the head is a no-op.
  Status trim(uint64_t sequence);

  // The first live record (== next_sequence() when there is none).
  uint64_t head_sequence() const;
  // The sequence number the next append() gets.
  uint64_t next_sequence() const;
  // The last committed record (head_sequence() - 1 when there is none).
  uint64_t committed_sequence() const;
  // Bytes of the log that no live record (committed or not) holds; a
  // record takes 40 header bytes plus its payload rounded up to 8.
  uint64_t free_bytes() const;
  uint64_t log_size() const;
  // What the replay at open() found.
  JournalReplayReport replay_report() const;
  uint64_t offset() const { return offset_; }
  uint64_t length() const { return length_; }
  Device& device() { return *device_; }

 private:
  Journal(Device& device, uint64_t offset, uint64_t length);
  // Points the core at the device's current mapping (when it moved).
  Status Follow();

  Device* device_;
  uint64_t offset_;
  uint64_t length_;
  const std::byte* base_ = nullptr;  // the mapping the core stores into
  std::unique_ptr<journal::Journal> core_;
};

}  // namespace vnvram
