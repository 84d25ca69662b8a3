// RingClient: the frontend producer of one device's shared ring (the data
// plane; the xenbus handshake that allocates and grants the ring lives
// elsewhere). It initialises the ring, assigns request ids, pushes and
// kicks, and consumes responses as the hardened blkfront does: the backend
// is not trusted. Any response the client did not ask for (rsp_prod past
// what was pushed, unknown or duplicate id, wrong operation for the id,
// unknown status) or one whose durable sequence is below an earlier
// response's on this ring puts the client in a sticky error state
// (kCorruption); the owner then tears the connection down. Never a crash.
// One RingClient serves one connection: a backend that restarts (and may
// restart its sequence) gets a new one.
// Thread-safety: not thread-safe; one thread (or the caller's lock) at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "common/result.h"
#include "vnvram/vnvramif.h"

namespace vnvram::frontend {

// A validated response: its id was in flight with this operation.
struct Completion {
  uint64_t id = 0;
  uint8_t operation = 0;
  int16_t status = VNVRAMIF_RSP_OKAY;  // a known VNVRAMIF_RSP_*
  uint64_t durable_seq = 0;
  uint64_t value = 0;
};

class RingClient {
 public:
  // Raises the event channel towards the backend. May be empty (no kicks).
  using NotifyFn = std::function<void()>;
  // Blocks until the backend may have answered (an event, or a test that
  // runs the server inline). An error ends Call() with that error.
  using WaitFn = std::function<Status()>;

  // Initialises the shared ring in `sring` (zeroes it, SHARED_RING_INIT,
  // FRONT_RING_INIT): (1 << order) * VNVRAMIF_PAGE_SIZE bytes, 1 <= pages
  // <= VNVRAMIF_MAX_RING_PAGES, that the caller will grant to the backend.
  // kInvalidArgument for memory of the wrong shape.
  static Result<std::unique_ptr<RingClient>> Create(std::span<std::byte> sring, NotifyFn notify);

  RingClient(const RingClient&) = delete;
  RingClient& operator=(const RingClient&) = delete;

  // Queues `req` in the next free slot with a fresh id (req.id is ignored)
  // and returns that id; nothing is visible to the backend until Kick().
  // The request is sent as given otherwise: validating it is the backend's
  // job (and tests send bad ones on purpose). kResourceExhausted when
  // ring_size() requests are in flight; the sticky error when in error.
  Result<uint64_t> Submit(const vnvramif_request& req);

  // Publishes the queued requests and notifies the backend if it asked to
  // be (the rule of RING_PUSH_REQUESTS_AND_CHECK_NOTIFY, computed from our
  // own copy of the old index rather than one read back from shared
  // memory). Returns the sticky error when in error (nothing is pushed).
  Status Kick();

  // Takes every response the backend has pushed, checks each, and arms
  // rsp_event (RING_FINAL_CHECK_FOR_RESPONSES) so the backend notifies the
  // next one. Completions that Call() set aside are returned first.
  Result<std::vector<Completion>> Poll();
  // The same, appending to `out` (no allocation once `out` has capacity:
  // for hot paths). On error `out` may hold part of the batch: discard it.
  Status PollInto(std::vector<Completion>* out);

  // Submit + Kick, then wait_fn/Poll until the response for this request
  // arrives; other completions are kept for the next Poll().
  Result<Completion> Call(const vnvramif_request& req, const WaitFn& wait_fn);

  // The highest durable sequence a response on this ring carried.
  uint64_t durable_seq() const { return durable_seq_; }
  bool in_error() const { return !error_.ok(); }
  const Status& error() const { return error_; }
  size_t in_flight() const { return in_flight_; }
  // Whether the backend has produced responses not yet consumed (one read
  // of rsp_prod).
  bool ResponsesWaiting() const;
  uint32_t ring_size() const { return ring_size_; }

 private:
  RingClient(vnvramif_sring_t* sring, size_t sring_bytes, NotifyFn notify);
  Status Fail(Status s);
  Status Consume(std::vector<Completion>* out);

  // Constant after construction.
  const NotifyFn notify_;
  uint32_t ring_size_ = 0;

  vnvramif_front_ring_t ring_{};
  RING_IDX pushed_ = 0;  // the req_prod we last published
  // In-flight bookkeeping without allocation per request: a table of
  // ring_size() slots; a request's id is (sequence << kSlotBits) | slot, so
  // a response's id names its slot and must match the id stored there.
  static constexpr unsigned kSlotBits = 16;
  struct Slot {
    uint64_t id = 0;
    uint8_t operation = 0;
    bool busy = false;
  };
  std::vector<Slot> slots_;
  std::vector<uint32_t> free_slots_;
  size_t in_flight_ = 0;
  uint64_t next_seq_ = 1;
  std::vector<Completion> set_aside_;
  uint64_t durable_seq_ = 0;  // never decreases (checked per response)
  Status error_;
};

}  // namespace vnvram::frontend
