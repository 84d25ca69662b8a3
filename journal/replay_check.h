// ReplayCheck: follows a journal replay record by record (as the Open
// callback) and checks what it gets against the deterministic payloads of
// journal/payload_pattern.h: sequences consecutive from the head, each
// payload byte-exact (and of its pattern size when a size range is given).
// Counts records and bytes and keeps the first few mismatches. Used by
// vnvram-journal and the journal tests. Not thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "journal/payload_pattern.h"
#include "vnvram/journal.hpp"

namespace vnvram::journal {

class ReplayCheck {
 public:
  // `verify`: check payloads (else only count); `range`: also check sizes.
  ReplayCheck(bool verify, std::optional<SizeRange> range) : verify_(verify), range_(range) {}

  // The callback for vnvram::Journal::Open.
  JournalRecordFn Callback() {
    return [this](const JournalRecord& r) { Add(r); };
  }
  void Add(const JournalRecord& r);
  // After the open: the head must be the first record's sequence and the
  // next sequence one past the last (a mismatch when not).
  void Finish(uint64_t head_sequence, uint64_t next_sequence);

  uint64_t records() const { return records_; }
  uint64_t bytes() const { return bytes_; }
  uint64_t first() const { return first_; }  // 0 when none
  uint64_t last() const { return last_; }    // 0 when none
  uint64_t mismatches() const { return mismatches_; }
  // "seq=S: why" for the first kKeptMessages mismatches.
  const std::vector<std::string>& messages() const { return messages_; }
  static constexpr size_t kKeptMessages = 10;

 private:
  void Mismatch(std::string what);

  const bool verify_;
  const std::optional<SizeRange> range_;
  uint64_t records_ = 0;
  uint64_t bytes_ = 0;
  uint64_t first_ = 0;
  uint64_t last_ = 0;
  uint64_t mismatches_ = 0;
  std::vector<std::string> messages_;
};

}  // namespace vnvram::journal
