#include "backend/ring_stats.h"

#include <bit>

namespace vnvram::backend {

void LatencyHistogram::Record(Nanos latency) {
  const uint64_t ns = latency.count() > 0 ? static_cast<uint64_t>(latency.count()) : 0;
  const uint64_t us = ns / 1000;
  // bit_width(us): 0 for < 1 us, i for [2^(i-1), 2^i) us.
  size_t bucket = static_cast<size_t>(std::bit_width(us));
  if (bucket >= kBuckets) bucket = kBuckets - 1;
  ++buckets[bucket];
  ++count;
  sum_ns += ns;
  if (ns > max_ns) max_ns = ns;
}

uint64_t LatencyHistogram::QuantileUpperBoundMicros(double q) const {
  if (count == 0) return 0;
  if (q < 0) q = 0;
  if (q > 1) q = 1;
  uint64_t rank = static_cast<uint64_t>(q * static_cast<double>(count));
  if (rank >= count) rank = count - 1;
  uint64_t seen = 0;
  for (size_t i = 0; i < kBuckets; ++i) {
    seen += buckets[i];
    if (seen > rank) return uint64_t{1} << i;
  }
  return uint64_t{1} << (kBuckets - 1);
}

uint64_t RingStats::total_requests() const {
  uint64_t n = unknown_op;
  for (uint64_t r : requests) n += r;
  return n;
}

}  // namespace vnvram::backend
