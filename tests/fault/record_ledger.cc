#include "tests/fault/record_ledger.h"

#include "tools/guest-demo/demo_record.h"

namespace vnvram::testing {

RecordLedger::RecordLedger(uint64_t region_size) : capacity_(demo::RecordCapacity(region_size)) {}

Status RecordLedger::Acked(uint64_t seq) {
  if (seq < next_) return Status::Ok();  // a restarted writer repeating a record: still fine
  if (seq != next_) {
    return Status::FailedPrecondition("record " + std::to_string(seq) +
                                      " acknowledged before record " + std::to_string(next_));
  }
  if (seq >= capacity_) {
    return Status::OutOfRange("record " + std::to_string(seq) + " beyond the capacity " +
                              std::to_string(capacity_));
  }
  ++next_;
  ++total_;
  return Status::Ok();
}

Status RecordLedger::StartPass() {
  if (!pass_complete()) {
    return Status::FailedPrecondition("pass " + std::to_string(pass_) + " stopped at record " +
                                      std::to_string(next_));
  }
  ++pass_;
  next_ = 0;
  return Status::Ok();
}

std::vector<RecordLedger::Finding> RecordLedger::Check(std::span<const std::byte> region) const {
  std::vector<Finding> bad;
  for (uint64_t s = 0; s < capacity_; ++s) {
    const bool acked = s < next_ || (pass_ > 0 && s != next_);
    if (!acked) continue;
    if (demo::RecordOffset(s) + demo::kRecordSize > region.size()) {
      bad.push_back({s, "beyond the copy of " + std::to_string(region.size()) + " bytes"});
      continue;
    }
    std::string why;
    const auto c =
        demo::CheckRecord(s, region.subspan(demo::RecordOffset(s), demo::kRecordSize), &why);
    if (c == demo::RecordCheck::kEmpty) why = "missing (zero)";
    if (c != demo::RecordCheck::kValid) {
      bad.push_back({s, why});
      continue;
    }
    const uint64_t pass = s < next_ ? pass_ : pass_ - 1;
    const uint32_t writer =
        demo::RecordWriter(region.subspan(demo::RecordOffset(s), demo::kRecordSize));
    if (writer != TagOf(pass)) {
      bad.push_back({s, "holds the version tagged " + std::to_string(writer) + ", not pass " +
                            std::to_string(pass) + "'s (a rewrite missed)"});
    }
  }
  return bad;
}

}  // namespace vnvram::testing
