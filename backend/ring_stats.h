// RingStats: counters of one device's ring, for the statistics vnvramd
// publishes in xenstore. A plain value type: the ring server fills its own
// copy on its worker thread and hands out snapshots (see RingServer::Stats).
#pragma once

#include <array>
#include <cstdint>

#include "common/clock.h"
#include "vnvram/vnvramif.h"

namespace vnvram::backend {

// Latency histogram with power-of-two buckets: bucket 0 counts samples
// below 1 us, bucket i (1 <= i < kBuckets - 1) samples in [2^(i-1), 2^i) us,
// and the last bucket everything from 2^(kBuckets-2) us (~0.5 s) up.
struct LatencyHistogram {
  static constexpr size_t kBuckets = 21;
  std::array<uint64_t, kBuckets> buckets{};
  uint64_t count = 0;
  uint64_t sum_ns = 0;
  uint64_t max_ns = 0;

  void Record(Nanos latency);
  // Upper bound, in microseconds, of the bucket holding quantile q (0..1);
  // 0 when empty. Coarse by design: a power of two.
  uint64_t QuantileUpperBoundMicros(double q) const;
};

struct RingStats {
  // Requests taken off the ring, per known operation (accepted or not).
  std::array<uint64_t, VNVRAMIF_OP_COUNT> requests{};
  uint64_t unknown_op = 0;       // operation >= VNVRAMIF_OP_COUNT
  uint64_t rejected = 0;         // failed validation (includes unknown_op)
  uint64_t failed = 0;           // valid but failed: sink, mapping
  uint64_t bytes_persisted = 0;  // committed ranges (FLUSH: the whole region)
  uint64_t bytes_written = 0;    // WRITE copies into the region
  uint64_t bytes_read = 0;       // READ copies out of the region
  uint64_t sink_calls = 0;       // one per group commit
  uint64_t coalesced = 0;        // requests that shared a sink call
  uint64_t responses = 0;
  uint64_t notifies = 0;             // event-channel kicks sent
  uint64_t budget_exhausted = 0;     // Process() calls that returned kMorePending
  LatencyHistogram persist_latency;  // time inside the sink, per sink call

  uint64_t total_requests() const;
};

}  // namespace vnvram::backend
