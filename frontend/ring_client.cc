#include "frontend/ring_client.h"

#include <bit>
#include <cstring>
#include <string>
#include <utility>

#include "common/shared_copy.h"

namespace vnvram::frontend {
namespace {

bool KnownStatus(int16_t s) {
  switch (s) {
    case VNVRAMIF_RSP_OKAY:
    case VNVRAMIF_RSP_ERROR:
    case VNVRAMIF_RSP_EOPNOTSUPP:
    case VNVRAMIF_RSP_EINVAL:
    case VNVRAMIF_RSP_ERANGE:
    case VNVRAMIF_RSP_EACCES:
    case VNVRAMIF_RSP_EAGAIN: return true;
    default: return false;
  }
}

}  // namespace

static_assert(VNVRAMIF_RING_SIZE(VNVRAMIF_MAX_RING_PAGES) <= (1u << 16),
              "request ids keep the slot in their low 16 bits");

Result<std::unique_ptr<RingClient>> RingClient::Create(std::span<std::byte> sring,
                                                       NotifyFn notify) {
  if (sring.size() % VNVRAMIF_PAGE_SIZE != 0) {
    return Status::InvalidArgument("ring is not a whole number of pages");
  }
  const size_t pages = sring.size() / VNVRAMIF_PAGE_SIZE;
  if (pages == 0 || pages > VNVRAMIF_MAX_RING_PAGES || !std::has_single_bit(pages)) {
    return Status::InvalidArgument("ring page count must be a power of two in [1, " +
                                   std::to_string(VNVRAMIF_MAX_RING_PAGES) + "]");
  }
  if (reinterpret_cast<uintptr_t>(sring.data()) % alignof(vnvramif_sring_t) != 0) {
    return Status::InvalidArgument("ring memory is misaligned");
  }
  std::memset(sring.data(), 0, sring.size());
  auto* shared = reinterpret_cast<vnvramif_sring_t*>(sring.data());
  return std::unique_ptr<RingClient>(new RingClient(shared, sring.size(), std::move(notify)));
}

RingClient::RingClient(vnvramif_sring_t* sring, size_t sring_bytes, NotifyFn notify)
    : notify_(std::move(notify)) {
  SHARED_RING_INIT(sring);
  FRONT_RING_INIT(&ring_, sring, sring_bytes);
  ring_size_ = RING_SIZE(&ring_);
  slots_.resize(ring_size_);
  free_slots_.reserve(ring_size_);
  for (uint32_t i = ring_size_; i > 0; --i) free_slots_.push_back(i - 1);
}

Status RingClient::Fail(Status s) {
  if (error_.ok()) error_ = std::move(s);
  return error_;
}

Result<uint64_t> RingClient::Submit(const vnvramif_request& req) {
  if (in_error()) return error_;
  // A request holds its slot (and one ring entry) from Submit() until its
  // response is consumed, so no free slot is RING_FULL.
  if (free_slots_.empty() || RING_FULL(&ring_)) {
    return Status::ResourceExhausted("ring full: " + std::to_string(ring_size_) +
                                     " requests in flight");
  }
  const uint32_t slot = free_slots_.back();
  free_slots_.pop_back();
  vnvramif_request copy = req;
  copy.id = (next_seq_++ << kSlotBits) | slot;
  slots_[slot] = Slot{copy.id, copy.operation, true};
  ++in_flight_;
  // The backend may read the slot at any time (a stale index): one store
  // per word (common/shared_copy.h).
  StoreToShared(RING_GET_REQUEST(&ring_, ring_.req_prod_pvt), copy);
  ++ring_.req_prod_pvt;
  return copy.id;
}

Status RingClient::Kick() {
  if (in_error()) return error_;
  if (ring_.req_prod_pvt == pushed_) return Status::Ok();
  // As RING_PUSH_REQUESTS_AND_CHECK_NOTIFY, but the old producer index is
  // our own copy rather than one read back from shared memory.
  const RING_IDX old_prod = pushed_;
  const RING_IDX new_prod = ring_.req_prod_pvt;
  xen_wmb();  // the backend sees the requests before the index
  __atomic_store_n(&ring_.sring->req_prod, new_prod, __ATOMIC_RELAXED);
  xen_mb();  // the backend sees the index before we read req_event
  pushed_ = new_prod;
  const RING_IDX event = __atomic_load_n(&ring_.sring->req_event, __ATOMIC_RELAXED);
  const bool notify =
      static_cast<RING_IDX>(new_prod - event) < static_cast<RING_IDX>(new_prod - old_prod);
  if (notify && notify_) notify_();
  return Status::Ok();
}

Status RingClient::Consume(std::vector<Completion>* out) {
  for (;;) {
    // The one read of the backend's producer index for this pass.
    const RING_IDX rp = __atomic_load_n(&ring_.sring->rsp_prod, __ATOMIC_RELAXED);
    xen_rmb();  // responses are read after the index
    // A response for a request we never pushed (this also catches an index
    // more than the ring size ahead, RING_RESPONSE_PROD_OVERFLOW).
    const RING_IDX answerable = pushed_ - ring_.rsp_cons;
    const RING_IDX offered = rp - ring_.rsp_cons;
    if (offered > answerable) {
      return Fail(Status::Corruption("backend rsp_prod " + std::to_string(rp) + " is " +
                                     std::to_string(offered) + " responses ahead, only " +
                                     std::to_string(answerable) + " requests outstanding"));
    }
    while (ring_.rsp_cons != rp) {
      vnvramif_response rsp;
      // Read once, word by word: a hostile backend may rewrite the slot.
      CopyFromShared(RING_GET_RESPONSE(&ring_, ring_.rsp_cons), &rsp);
      const uint64_t slot_index = rsp.id & ((uint64_t{1} << kSlotBits) - 1);
      if (slot_index >= slots_.size() || !slots_[slot_index].busy ||
          slots_[slot_index].id != rsp.id) {
        return Fail(Status::Corruption("backend answered id " + std::to_string(rsp.id) +
                                       ", which is not in flight (unknown or duplicate)"));
      }
      Slot& slot = slots_[slot_index];
      if (slot.operation != rsp.operation) {
        return Fail(Status::Corruption("backend answered id " + std::to_string(rsp.id) +
                                       " as operation " + std::to_string(rsp.operation) +
                                       ", the request was " + std::to_string(slot.operation)));
      }
      if (!KnownStatus(rsp.status)) {
        return Fail(Status::Corruption("backend answered id " + std::to_string(rsp.id) +
                                       " with unknown status " + std::to_string(rsp.status)));
      }
      // Each response carries the highest sequence durable when it was
      // sent, and responses are sent in ring order: on one ring it never
      // goes backwards. A backend whose durable point moves back is lying
      // about what is durable.
      if (rsp.durable_seq < durable_seq_) {
        return Fail(Status::Corruption("backend answered id " + std::to_string(rsp.id) +
                                       " with durable sequence " + std::to_string(rsp.durable_seq) +
                                       ", below the " + std::to_string(durable_seq_) +
                                       " it reported earlier on this ring (sequence went back)"));
      }
      durable_seq_ = rsp.durable_seq;
      slot.busy = false;
      free_slots_.push_back(static_cast<uint32_t>(slot_index));
      --in_flight_;
      ++ring_.rsp_cons;
      out->push_back(Completion{rsp.id, rsp.operation, rsp.status, rsp.durable_seq, rsp.value});
    }
    unsigned int more = 0;
    RING_FINAL_CHECK_FOR_RESPONSES(&ring_, more);
    if (!more) return Status::Ok();
  }
}

bool RingClient::ResponsesWaiting() const {
  return __atomic_load_n(&ring_.sring->rsp_prod, __ATOMIC_RELAXED) != ring_.rsp_cons;
}

Result<std::vector<Completion>> RingClient::Poll() {
  std::vector<Completion> out;
  VNVRAM_RETURN_IF_ERROR(PollInto(&out));
  return out;
}

Status RingClient::PollInto(std::vector<Completion>* out) {
  if (in_error()) return error_;
  if (!set_aside_.empty()) {
    out->insert(out->end(), set_aside_.begin(), set_aside_.end());
    set_aside_.clear();
  }
  return Consume(out);
}

Result<Completion> RingClient::Call(const vnvramif_request& req, const WaitFn& wait_fn) {
  VNVRAM_ASSIGN_OR_RETURN(const uint64_t id, Submit(req));
  VNVRAM_RETURN_IF_ERROR(Kick());
  for (;;) {
    std::vector<Completion> got;
    VNVRAM_RETURN_IF_ERROR(Consume(&got));
    Result<Completion> mine = Status::NotFound("no response yet");
    for (Completion& c : got) {
      if (c.id == id) {
        mine = c;
      } else {
        set_aside_.push_back(c);
      }
    }
    if (mine.ok()) return mine;
    if (!wait_fn) return Status::FailedPrecondition("Call() without a wait function");
    VNVRAM_RETURN_IF_ERROR(wait_fn());
  }
}

}  // namespace vnvram::frontend
