#include "backend/persist_sink.h"

namespace vnvram::backend {

Result<uint64_t> PersistSink::PersistBatch(std::span<const ByteRange> ranges) {
  if (ranges.empty()) return Status::InvalidArgument("empty persist batch");
  uint64_t seq = 0;
  for (const ByteRange& r : ranges) {
    VNVRAM_ASSIGN_OR_RETURN(seq, Persist(r.offset, r.length));
  }
  return seq;
}

Result<uint64_t> LocalPersistSink::Persist(uint64_t /*offset*/, uint64_t /*length*/) {
  // The stores to the region happened before this call in program order;
  // the release makes them visible to whoever later observes the sequence.
  return seq_.fetch_add(1, std::memory_order_acq_rel) + 1;
}

Result<uint64_t> LocalPersistSink::PersistBatch(std::span<const ByteRange> ranges) {
  if (ranges.empty()) return Status::InvalidArgument("empty persist batch");
  return seq_.fetch_add(1, std::memory_order_acq_rel) + 1;
}

}  // namespace vnvram::backend
