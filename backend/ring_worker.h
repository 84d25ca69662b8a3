// RingWorker: the thread serving one connected device's ring; owns the ring
// mapping, the event-channel handle and the RingServer. Created and
// destroyed by the control thread; fenced(), fence_status() and Stats() are
// safe from any thread. No exception leaves the worker thread.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "backend/ring_server.h"
#include "backend/segment_mapper.h"
#include "backend/volume_region.h"
#include "common/result.h"
#include "platform/event_channel.h"
#include "platform/grant.h"

namespace vnvram::backend {

// The worker waits on the event channel (and a stop eventfd), serves the
// ring, and when the ring misbehaves (fenced) stops serving and calls
// `on_fence` so the control plane can fence the device.
class RingWorker {
 public:
  struct Params {
    std::unique_ptr<platform::GrantMapping> ring;     // the mapped shared ring
    std::unique_ptr<platform::EventChannels> evtchn;  // handle owning `port`
    platform::EvtchnPort port = 0;                    // our bound interdomain port
    VolumeRegion* region = nullptr;                   // must outlive the worker
    platform::GrantMapper* copy_mapper = nullptr;     // null: no copy mode
    DomId frontend = 0;
    std::function<void()> on_fence;  // called on the worker thread; thread-safe
    std::string log_prefix;          // "dom F dev N"
    // Once the ring is drained, look for the next request this long without
    // sleeping before blocking on the event channel (0: block at once).
    std::chrono::microseconds spin{0};
  };

  // Creates the RingServer (kInvalidArgument for a ring of the wrong shape)
  // and starts the thread.
  static Result<std::unique_ptr<RingWorker>> Start(Params params);
  // Stops the thread, unbinds the port, unmaps the ring.
  ~RingWorker();
  RingWorker(const RingWorker&) = delete;
  RingWorker& operator=(const RingWorker&) = delete;

  bool fenced() const;
  Status fence_status() const;
  RingStats Stats() const { return server_->Stats(); }

 private:
  explicit RingWorker(Params params) : p_(std::move(params)) {}
  void Run();
  // One serving loop; returns when asked to stop or on a fatal error.
  Status Loop();
  // Yields until a request is waiting (true) or the spin time is over.
  bool SpinForRequests();

  Params p_;
  std::unique_ptr<GrantSegmentMapper> segment_mapper_;
  std::unique_ptr<RingServer> server_;
  int stop_fd_ = -1;
  std::thread thread_;
  std::atomic<bool> failed_{false};
  mutable std::mutex mu_;
  Status failure_;  // guarded by mu_: a worker failure other than a fence
};

}  // namespace vnvram::backend
