// The product's figures for vnvram-bench, measured through libvnvram as a
// guest uses it: persist latency at QD1 and throughput at a queue depth
// (persist_async + drain_to), the 100-volume scale run, and the backend's
// memory beyond its regions (from /proc/<pid>/smaps). Single-threaded
// except RunScale, which drives each volume from its own thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "bench/bench_stats.h"
#include "common/result.h"
#include "vnvram/vnvram.hpp"

namespace vnvram::bench {

struct PersistPoint {
  std::string config;  // "local", "1 replica sync", ...
  size_t size = 0;
  size_t qd = 1;
  double ops_per_s = 0;
  Summary latency;  // QD1: per persist; QD > 1: per record, including waiting for room
  Samples samples;  // QD1 only, for the CDF plot
};

// Stores `size` bytes at successive offsets of `dev`'s region and persists
// each, `qd` in flight, for `run`. The stores are outside the timed span.
Result<PersistPoint> MeasurePersist(Device& dev, std::string config, size_t size, size_t qd,
                                    std::chrono::milliseconds run);

struct ScaleVolume {
  std::string platform;  // of the guest that opens it
  uint32_t devid = 0;
};

struct ScaleResult {
  size_t volumes = 0;
  double aggregate_ops_per_s = 0;
  Summary per_volume_p50;  // the spread of the volumes' own p50 latencies
  Summary all;             // every persist of every volume
  double slowest_p99 = 0;  // the worst volume's p99
};

// Opens every volume (its own Device), then drives each from its own
// thread: QD1 persists of `size` bytes for `run`, all at once.
Result<ScaleResult> RunScale(const std::vector<ScaleVolume>& volumes, size_t size,
                             std::chrono::milliseconds run);

struct MemoryUse {
  uint64_t rss = 0;         // bytes, all mappings
  uint64_t region_rss = 0;  // bytes, mappings of granted region pages (sim: grants/*/pages)
};
// Reads /proc/<pid>/smaps.
Result<MemoryUse> ReadMemoryUse(pid_t pid);

}  // namespace vnvram::bench
