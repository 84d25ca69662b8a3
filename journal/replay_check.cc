#include "journal/replay_check.h"

namespace vnvram::journal {

void ReplayCheck::Add(const JournalRecord& r) {
  if (records_ == 0) {
    first_ = r.sequence;
  } else if (r.sequence != last_ + 1) {
    Mismatch("seq=" + std::to_string(r.sequence) + ": follows " + std::to_string(last_));
  }
  last_ = r.sequence;
  ++records_;
  bytes_ += r.payload.size();
  if (!verify_) return;
  if (auto why = CheckPattern(r.sequence, r.payload, range_)) {
    Mismatch("seq=" + std::to_string(r.sequence) + ": " + *why);
  }
}

void ReplayCheck::Finish(uint64_t head_sequence, uint64_t next_sequence) {
  if (records_ != next_sequence - head_sequence) {
    Mismatch("the journal's head " + std::to_string(head_sequence) + " and next " +
             std::to_string(next_sequence) + " disagree with " + std::to_string(records_) +
             " records replayed");
  } else if (records_ != 0 && (first_ != head_sequence || last_ + 1 != next_sequence)) {
    Mismatch("records " + std::to_string(first_) + ".." + std::to_string(last_) +
             " are not the journal's head " + std::to_string(head_sequence) + " to next " +
             std::to_string(next_sequence));
  }
}

void ReplayCheck::Mismatch(std::string what) {
  ++mismatches_;
  if (messages_.size() < kKeptMessages) messages_.push_back(std::move(what));
}

}  // namespace vnvram::journal
