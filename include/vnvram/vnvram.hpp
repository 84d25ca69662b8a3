// libvnvram: the guest's C++ API to a vnvram device. A Device owns one
// device's frontend (xenbus handshake, ring, event channel, the mapped
// region) and every request in flight on it. Thread-safety: every method may
// be called from any thread; calls are serialised on one internal mutex (a
// call that waits holds it). The region's bytes are the caller's to
// synchronise. Errors are vnvram::Status values; nothing throws.
//
// Multipath. A volume may be reachable over several paths (xenbus devices
// carrying the same volume UUID, possibly served by different backend
// domains). Open() opens every path of the volume, makes the one whose
// backend is the volume's primary active (or asks the best path's backend
// to become primary) and keeps the others connected as standbys. When the
// active path's backend dies, closes, refuses requests as not primary, or
// stops answering (path_timeout, or a probe after a standby reports the
// primary unreachable), the Device fails over by itself: it asks the best
// standby's backend to take over (majority rule, docs/multipath.md),
// re-issues what was in flight there and goes on; callers see a pause.
// Operator failovers (nvram-tool failover) are served by a background
// thread even while no call is running. docs/multipath.md has the details.
//
// Region address and reconnects. The region is mapped from the backend's
// grants. When the backend restarts (it goes back to InitWait with new
// grants) or the Device fails over to another path, it maps the new grants,
// usually at a new address: generation() then grows by one and region()
// returns the new span. The caller's view is carried over: every byte of
// the old mapping (persisted or not) is copied into the new one before
// anything is issued there, then what was in flight is re-issued. If no
// connection comes back before the call's deadline the requests fail with
// kUnavailable. The generation changes only inside a Device call (a
// failover the background thread runs switches the mapping in the next
// call, region() included), so stores made to a span before a call are
// never lost by a switch during it. A span obtained before the change
// stays mapped (stores to it are harmless but no longer reach the device)
// until close() or eight later re-maps. Callers that cache the span compare
// generation() after each call; in a program where several threads store,
// a thread storing while another thread's call switches must redo its
// stores into the new span before persisting them.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/status.h"

namespace vnvram {

struct OpenOptions {
  // "xen", "sim:<dir>:<domid>"; empty: $VNVRAM_PLATFORM, else "xen".
  std::string platform;
  // xenbus device id of the path (device/vnvram/<devid>).
  uint32_t devid = 0;
  // When not empty: open this volume UUID (all its paths) instead of the
  // volume of path `devid`. Opened by devid, that path is preferred as the
  // active one when its backend serves the volume.
  std::string volume;
  // Budget of the handshake and of every call that waits (including a
  // re-handshake after a backend restart).
  std::chrono::milliseconds timeout{10000};
  // Ring pages = 2^order, capped by the backend's max-ring-page-order.
  uint32_t ring_page_order = 2;
  // A request unanswered this long on the active path, with another path
  // to go to, fails the path over (reason ring-timeout). Longer than the
  // backend's replicated-persist timeout (vnvramd --persist-timeout-ms, 5 s
  // by default), so that a primary waiting for a slow replica is not
  // failed over; a dead backend is noticed sooner (its xenstore state, a
  // standby's primary-link=down and a probe).
  std::chrono::milliseconds path_timeout{6000};
  // How long a probe of a suspect active path may take.
  std::chrono::milliseconds probe_timeout{30};
  // Budget of an automatic failover.
  std::chrono::milliseconds failover_timeout{10000};
  // A call waiting for its answer looks at the ring this long without
  // sleeping before it blocks on the event channel: waking a blocked thread
  // costs tens of microseconds on an idle virtual CPU. 0: block at once.
  std::chrono::microseconds poll_spin{50};
};

enum class PathState {
  kActive,   // carries the I/O
  kStandby,  // connected, ready to take over
  kDown,     // its backend is not reachable now (reconnected when it is back)
  kFailed,   // its backend broke the protocol; not used again
};

struct PathInfo {
  uint32_t devid = 0;
  uint32_t backend_domid = 0;
  uint32_t priority = 0;
  PathState state = PathState::kDown;
  std::string role;  // the backend's published role ("" for a local volume)
  uint64_t epoch = 0;
};

struct DeviceInfo {
  uint64_t region_size = 0;  // bytes (GET_INFO, checked against xenstore)
  uint64_t durable_seq = 0;  // the backend's durable sequence number
  uint64_t generation = 0;   // connections so far (1 after open)
  uint32_t ring_page_order = 0;
  uint32_t backend_domid = 0;  // of the active path
  uint32_t active_path = 0;    // its devid
  uint64_t failovers = 0;      // path switches since open
  std::string volume;          // UUID
  bool feature_flush = false;
  bool feature_barrier = false;
  bool feature_copy_mode = false;
};

enum class DeviceState {
  kConnected,     // requests flow
  kReconnecting,  // the backend went away; calls wait (up to their deadline)
                  // for it to come back and re-handshake
  kError,         // the backend misbehaved or closed with an error: sticky
  kClosed,        // close() was called or the device was detached
};

class Device {
 public:
  // Opens device `options.devid` of this domain and runs the handshake.
  // kNotFound: no such device; kTimeout: the backend did not answer in
  // time; kCorruption: the backend published bad values.
  static Result<std::unique_ptr<Device>> Open(const OpenOptions& options);
  // close() with the open timeout.
  ~Device();
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  // The mapped region (empty once close()d or failed; after a detach by the
  // toolstack, the last mapping until close()). See "Region address" above.
  std::span<std::byte> region();
  uint64_t generation() const;
  uint64_t size() const;

  // Makes [offset, offset + length) durable; returns when the backend has
  // acknowledged it. kOutOfRange for a range outside the region.
  Status persist(uint64_t offset, uint64_t length);
  // Copies `src` into the region at `offset`, then persist().
  Status memcpy_persist(uint64_t offset, std::span<const std::byte> src);

  // Batching: persist_async() queues a PERSIST and returns; flush() queues
  // a FLUSH (everything stored so far); drain() waits until every queued
  // request is answered and returns the first error among them.
  Status persist_async(uint64_t offset, uint64_t length);
  Status flush();
  Status drain();
  // Waits until at most `at_most` queued requests are unanswered (a queue
  // depth of at_most + 1 with one persist_async() per call) and returns
  // the first error among the answered ones. drain_to(0) is drain().
  Status drain_to(size_t at_most);
  // Requests queued before it complete before any queued after it starts.
  Status barrier();

  // Copy mode (the backend copies through pages granted per request); no
  // need to touch region(). write() also makes the bytes durable.
  Status read(uint64_t offset, std::span<std::byte> dst);
  Status write(uint64_t offset, std::span<const std::byte> src);

  // GET_INFO plus what the handshake learnt.
  Result<DeviceInfo> info();
  // Every path of the volume, by devid.
  std::vector<PathInfo> paths() const;
  // The highest durable sequence number the backend reported.
  uint64_t durable_seq() const;

  DeviceState state() const;
  // Why the device is in kError (OK otherwise).
  Status error() const;

  // Drains, then Closing -> Closed; unmaps everything. Idempotent.
  Status close();

  class Impl;

 private:
  explicit Device(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace vnvram
