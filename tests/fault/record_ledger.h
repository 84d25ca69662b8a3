// RecordLedger: the fault harness's checker model of one volume written by
// vnvram-guest-demo (tools/guest-demo/demo_record.h): which record numbers
// the guest saw acknowledged, in passes over the region (pass 0 fills it,
// each later pass rewrites every slot with the same record number, tagged
// with the pass: `write --tag`), and the check of a copy of the region
// against it. Not thread-safe.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"

namespace vnvram::testing {

class RecordLedger {
 public:
  explicit RecordLedger(uint64_t region_size);

  uint64_t capacity() const { return capacity_; }
  uint64_t pass() const { return pass_; }
  // The writer tag of this pass's records.
  uint32_t tag() const { return TagOf(pass_); }
  static uint32_t TagOf(uint64_t pass) { return static_cast<uint32_t>(pass); }
  // The next record number the writer stores (nothing at or after it in
  // this pass was acknowledged).
  uint64_t next() const { return next_; }
  uint64_t total_acked() const { return total_; }
  bool pass_complete() const { return next_ == capacity_; }

  // The writer acknowledged record `seq`. Records come in order; a
  // record out of order is an error (the writer is sequential).
  Status Acked(uint64_t seq);
  // The writer starts over from record 0 (after a complete pass).
  Status StartPass();

  struct Finding {
    uint64_t seq = 0;
    std::string why;
  };
  // Checks the bytes of a copy of the whole region: every acknowledged
  // record still there, of the pass that last acknowledged it (a slot
  // holding an earlier pass's record missed a rewrite). The slot at next()
  // is exempt (a store that no persist covered may sit there, whole or
  // torn); so are the never written slots of pass 0. Returns the records
  // that fail.
  std::vector<Finding> Check(std::span<const std::byte> region) const;

 private:
  uint64_t capacity_;
  uint64_t pass_ = 0;
  uint64_t next_ = 0;
  uint64_t total_ = 0;
};

}  // namespace vnvram::testing
