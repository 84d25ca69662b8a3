// RingServer: the backend consumer of one device's shared ring (the data
// plane; the xenbus handshake that maps the ring lives elsewhere). It owns
// nothing it is given: the mapped ring, the region, the sink, the mapper and
// the notify callback must outlive it. Thread-safety: one worker thread
// calls Process() (and everything not marked otherwise); Stats(), fenced()
// and fence_status() may be called from any thread.
//
// Security model: the frontend is hostile. Process() reads req_prod once
// per pass and fences the ring if it runs more than the ring size ahead;
// every request is copied out of shared memory (each word read once, with a
// relaxed atomic load) before it is looked at, validated by ValidateRequest, and only the validated
// copy drives the region, the sink and the mapper. A bad request gets an error response and the
// ring keeps being served; a fenced ring is never read or written again. Work per Process() call is
// bounded so that one flooding frontend cannot starve the other devices of a worker.
//
// Ordering: requests are executed one after another in ring order and their
// responses are written in ring order. Hence BARRIER needs no queueing:
// everything before it has completed (its response is written) when it is
// answered, and nothing after it has started.
//
// Group commit: consecutive PERSIST, WRITE and FLUSH requests of one pass
// are made durable with one PersistSink::PersistBatch() call covering all of
// their ranges, and answered together with the sequence it returns; a
// request of any other kind (or a failed one) first commits the group, so
// responses stay in ring order. If that sink call fails, every request in
// the group gets VNVRAMIF_RSP_EAGAIN when another path (or this one, later)
// may succeed (not primary; replicas silent past the persist timeout), and
// VNVRAMIF_RSP_ERROR otherwise. A WRITE's bytes are in the region
// before the group is committed; a PERSIST earlier in the same group of an
// overlapping range may therefore make the newer bytes durable, which is
// allowed: the guest did not wait for the PERSIST before issuing the WRITE.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "backend/persist_sink.h"
#include "backend/request_validator.h"
#include "backend/ring_stats.h"
#include "backend/segment_mapper.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/result.h"
#include "vnvram/vnvramif.h"

namespace vnvram::backend {

struct RingServerOptions {
  // Requests taken off the ring per Process() call, at least 1.
  uint32_t max_requests_per_call = 64;
  // Coalesce consecutive persists of one pass into one sink call.
  bool group_commit = true;
  // Prefix of every log line, e.g. "dom 3 dev 0".
  std::string log_prefix = "ring";
  // Source of time for the persist latency; SystemClock when null.
  const Clock* clock = nullptr;
};

class RingServer {
 public:
  // Raises the event channel towards the frontend. May be empty (no kicks).
  using NotifyFn = std::function<void()>;

  enum class Progress {
    kIdle,         // ring drained and req_event armed: wait for the next event
    kMorePending,  // stopped at the budget: call Process() again soon,
                   // after giving other devices their turn (no event will come)
  };

  // `sring`: the mapped shared ring, (1 << order) * VNVRAMIF_PAGE_SIZE bytes
  // with 1 <= pages <= VNVRAMIF_MAX_RING_PAGES, already initialised by the
  // frontend (SHARED_RING_INIT; the backend attaches at index 0 as blkback
  // does). `region`: the volume's memory, non-empty. `mapper`: null when
  // copy mode is not offered (WRITE/READ then get EOPNOTSUPP).
  // kInvalidArgument for a ring or region of the wrong shape.
  static Result<std::unique_ptr<RingServer>> Create(std::span<std::byte> sring,
                                                    std::span<std::byte> region, PersistSink& sink,
                                                    SegmentMapper* mapper, NotifyFn notify,
                                                    RingServerOptions options = {});

  RingServer(const RingServer&) = delete;
  RingServer& operator=(const RingServer&) = delete;

  // Serves what the frontend has produced, up to the budget, pushing the
  // responses and notifying the frontend as ring.h says. Returns kIdle or
  // kMorePending. Once the ring misbehaves (req_prod more than the ring
  // size ahead) the server fences it: this call and every later one return
  // kCorruption with the reason and never touch the ring again.
  Result<Progress> Process();

  // Whether the frontend has produced requests not yet consumed (one read
  // of req_prod; the ring worker's spin before it blocks). Worker thread.
  bool RequestsWaiting() const {
    return __atomic_load_n(&ring_.sring->req_prod, __ATOMIC_RELAXED) != ring_.req_cons;
  }

  // Any thread.
  bool fenced() const { return fenced_.load(std::memory_order_acquire); }
  Status fence_status() const;
  RingStats Stats() const;

  uint32_t ring_size() const { return ring_size_; }
  uint64_t region_size() const { return region_.size(); }

 private:
  struct GroupMember {
    uint64_t id;
    uint8_t operation;
    uint64_t value;
  };

  RingServer(vnvramif_sring_t* sring, size_t sring_bytes, std::span<std::byte> region,
             PersistSink& sink, SegmentMapper* mapper, NotifyFn notify, RingServerOptions options);

  void Handle(const vnvramif_request& req);
  void ExecuteCopy(const ValidatedRequest& r);
  void AddToGroup(const ValidatedRequest& r, bool has_range, ByteRange range, uint64_t value);
  void CommitGroup();
  void Respond(uint64_t id, uint8_t operation, int16_t status, uint64_t value,
               uint64_t durable_seq);
  // Commits the group, then responds (keeps responses in ring order).
  void RespondInOrder(uint64_t id, uint8_t operation, int16_t status, uint64_t value);
  void PushAndNotify();
  Status Fence(RING_IDX req_prod);
  void PublishStats();

  // Constant after construction.
  const std::span<std::byte> region_;
  PersistSink& sink_;
  SegmentMapper* const mapper_;
  const NotifyFn notify_;
  const RingServerOptions options_;
  const Clock& clock_;
  const log::Context log_;
  uint32_t ring_size_ = 0;

  // Worker thread only.
  vnvramif_back_ring_t ring_{};
  RingStats stats_;
  std::vector<ByteRange> group_ranges_;     // reserved to the budget
  std::vector<GroupMember> group_members_;  // reserved to the budget

  // Any thread.
  std::atomic<bool> fenced_{false};
  mutable std::mutex mu_;
  RingStats snapshot_;   // guarded by mu_
  Status fence_status_;  // guarded by mu_; written once, before fenced_
};

}  // namespace vnvram::backend
