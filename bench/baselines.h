// The baselines vnvram-bench measures in the same run as the product's
// figures (BRIEF §4): bare ZeroMQ round trip and pipelined throughput with
// the replication engine's socket options, a raw TCP round trip, a write +
// fdatasync on a local file, memcpy bandwidth, and the sim event-channel
// round trip. Each function runs alone and owns its sockets and threads.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

#include "bench/bench_stats.h"
#include "common/result.h"

namespace vnvram::bench {

using Duration = std::chrono::milliseconds;

// DEALER -> ROUTER over loopback TCP (each end its own ZeroMQ context, as
// two hosts), `size`-byte frames answered by a
// 36-byte acknowledgement from a polling thread, as a replica answers. With
// `spin`, the client waits as a persist does (yielding for 300 us, then
// blocking).
Result<Samples> ZmqRoundTrip(size_t size, Duration run, bool spin);
// The same sockets with `window` frames in flight: frames per second.
Result<double> ZmqPipelined(size_t size, size_t window, Duration run);
// A `size`-byte write answered by 36 bytes on a blocking TCP socket pair
// over loopback (TCP_NODELAY on both ends).
Result<Samples> TcpRoundTrip(size_t size, Duration run);
// pwrite of `size` bytes + fdatasync on a file in `dir`.
Result<Samples> WriteFdatasync(const std::string& dir, size_t size, size_t count);
// memcpy between two `bytes`-sized buffers (already faulted in): bytes/s.
double MemcpyBandwidth(size_t bytes, Duration run);
// Domain 1 notifies domain 0 on the sim event channels of `sim_dir`, which
// answers at once; both sides block in poll(2), or with `spin` first look
// for the event for up to 50 us without sleeping, as the ring client and
// the ring worker do (OpenOptions::poll_spin, vnvramd --ring-spin-us).
Result<Samples> SimEventChannelRoundTrip(const std::string& sim_dir, Duration run, bool spin);

}  // namespace vnvram::bench
