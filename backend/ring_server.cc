#include "backend/ring_server.h"

#include <bit>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <utility>

#include "common/shared_copy.h"

namespace vnvram::backend {
namespace {

// Rejected requests logged at warn level before the log goes quiet (one
// line per 1024 after that): a hostile guest must not flood the log.
constexpr uint64_t kLoudRejects = 8;
constexpr uint64_t kRejectLogEvery = 1024;

// Whether the n-th event of a kind a guest can cause at will gets a line.
bool WorthLogging(uint64_t n) {
  return n <= kLoudRejects || n % kRejectLogEvery == 0;
}

// The guest may rewrite a request slot while we read it, or a response
// slot while we write it: common/shared_copy.h.
void CopyRequest(const vnvramif_back_ring_t& ring, RING_IDX idx, vnvramif_request* out) {
  CopyFromShared(RING_GET_REQUEST(&ring, idx), out);
}

void StoreResponse(vnvramif_back_ring_t& ring, RING_IDX idx, const vnvramif_response& rsp) {
  StoreToShared(RING_GET_RESPONSE(&ring, idx), rsp);
}

}  // namespace

Result<std::unique_ptr<RingServer>> RingServer::Create(std::span<std::byte> sring,
                                                       std::span<std::byte> region,
                                                       PersistSink& sink, SegmentMapper* mapper,
                                                       NotifyFn notify, RingServerOptions options) {
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
  if (region.empty()) return Status::InvalidArgument("empty region");
  if (options.max_requests_per_call == 0) {
    return Status::InvalidArgument("max_requests_per_call must be at least 1");
  }
  auto* shared = reinterpret_cast<vnvramif_sring_t*>(sring.data());
  return std::unique_ptr<RingServer>(new RingServer(shared, sring.size(), region, sink, mapper,
                                                    std::move(notify), std::move(options)));
}

RingServer::RingServer(vnvramif_sring_t* sring, size_t sring_bytes, std::span<std::byte> region,
                       PersistSink& sink, SegmentMapper* mapper, NotifyFn notify,
                       RingServerOptions options)
    : region_(region),
      sink_(sink),
      mapper_(mapper),
      notify_(std::move(notify)),
      options_(std::move(options)),
      clock_(options_.clock ? *options_.clock : SystemClock::Instance()),
      log_(options_.log_prefix) {
  BACK_RING_INIT(&ring_, sring, sring_bytes);
  ring_size_ = RING_SIZE(&ring_);
  group_ranges_.reserve(options_.max_requests_per_call);
  group_members_.reserve(options_.max_requests_per_call);
}

Status RingServer::fence_status() const {
  std::lock_guard<std::mutex> lock(mu_);
  return fence_status_;
}

RingStats RingServer::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return snapshot_;
}

void RingServer::PublishStats() {
  std::lock_guard<std::mutex> lock(mu_);
  snapshot_ = stats_;
}

Result<RingServer::Progress> RingServer::Process() {
  if (fenced()) return fence_status();

  uint32_t budget = options_.max_requests_per_call;
  for (;;) {
    // The one read of the producer index for this pass; everything below
    // uses `rp`. The barrier orders the request reads after it.
    const RING_IDX rp = __atomic_load_n(&ring_.sring->req_prod, __ATOMIC_RELAXED);
    xen_rmb();
    if (RING_REQUEST_PROD_OVERFLOW(&ring_, rp)) {
      Status s = Fence(rp);
      PublishStats();
      return s;
    }

    const uint32_t budget_at_pass_start = budget;
    while (ring_.req_cons != rp && budget > 0) {
      vnvramif_request req;
      CopyRequest(ring_, ring_.req_cons, &req);
      ++ring_.req_cons;
      --budget;
      Handle(req);  // acts on the private copy only
    }
    CommitGroup();
    PushAndNotify();

    // Arms req_event when the ring looks empty, then looks once more so a
    // request produced in between is not left waiting for an event.
    unsigned int more = 0;
    RING_FINAL_CHECK_FOR_REQUESTS(&ring_, more);
    if (!more) {
      PublishStats();
      return Progress::kIdle;
    }
    // Every further pass must consume something: a frontend that flips
    // req_prod back and forth between our reads cannot keep us spinning here.
    if (budget == 0 || budget == budget_at_pass_start) {
      ++stats_.budget_exhausted;
      PublishStats();
      return Progress::kMorePending;
    }
  }
}

Status RingServer::Fence(RING_IDX req_prod) {
  Status s = Status::Corruption(
      "ring fenced: req_prod " + std::to_string(req_prod) + " is " +
      std::to_string(static_cast<RING_IDX>(req_prod - ring_.rsp_prod_pvt)) +
      " requests ahead of the responses, the ring holds " + std::to_string(ring_size_));
  log_.Error("{}", s.message());
  {
    std::lock_guard<std::mutex> lock(mu_);
    fence_status_ = s;
  }
  fenced_.store(true, std::memory_order_release);
  return s;
}

void RingServer::Handle(const vnvramif_request& req) {
  if (req.operation < VNVRAMIF_OP_COUNT) {
    ++stats_.requests[req.operation];
  } else {
    ++stats_.unknown_op;
  }

  const Validation v = ValidateRequest(req, region_.size());
  if (!v.ok()) {
    ++stats_.rejected;
    if (WorthLogging(stats_.rejected)) {
      log_.Warn(
          "rejected request id {} op {} ({}) offset {} length {} nr_segments {} "
          "page_offset {} flags {:#x}: {} (rejections so far: {})",
          req.id, unsigned{req.operation}, OpName(req.operation), req.offset, req.length,
          unsigned{req.nr_segments}, unsigned{req.page_offset}, req.flags, v.error().reason,
          stats_.rejected);
    }
    RespondInOrder(req.id, req.operation, v.error().status, 0);
    return;
  }

  const ValidatedRequest& r = v.request();
  const auto operation = static_cast<uint8_t>(r.op);
  switch (r.op) {
    case Op::kPersist:
      // An empty PERSIST joins the group without a range: it is answered
      // with the group's sequence, or the current one if nothing else is
      // pending.
      AddToGroup(r, r.length != 0, ByteRange{r.offset, r.length}, 0);
      return;
    case Op::kFlush: AddToGroup(r, true, ByteRange{0, region_.size()}, 0); return;
    case Op::kBarrier:
      // In-order execution: everything before it is answered by now.
      RespondInOrder(r.id, operation, VNVRAMIF_RSP_OKAY, 0);
      return;
    case Op::kGetInfo: RespondInOrder(r.id, operation, VNVRAMIF_RSP_OKAY, region_.size()); return;
    case Op::kWrite:
    case Op::kRead: ExecuteCopy(r); return;
  }
}

void RingServer::ExecuteCopy(const ValidatedRequest& r) {
  const auto operation = static_cast<uint8_t>(r.op);
  if (mapper_ == nullptr) {
    ++stats_.failed;
    RespondInOrder(r.id, operation, VNVRAMIF_RSP_EOPNOTSUPP, 0);
    return;
  }
  const bool into_guest = r.op == Op::kRead;
  auto mapping = mapper_->Map(r.segments(), /*writable=*/into_guest);
  if (!mapping.ok()) {
    ++stats_.failed;
    if (WorthLogging(stats_.failed)) {
      log_.Warn("{} id {}: cannot map {} granted segment(s): {} (failures so far: {})",
                OpName(operation), r.id, unsigned{r.nr_segments}, mapping.status().ToString(),
                stats_.failed);
    }
    RespondInOrder(r.id, operation, VNVRAMIF_RSP_EACCES, 0);
    return;
  }
  std::span<std::byte> pages = (*mapping)->data();
  const uint64_t needed = uint64_t{r.nr_segments} * VNVRAMIF_PAGE_SIZE;
  if (pages.size() < needed) {
    ++stats_.failed;
    log_.Error("{} id {}: mapper returned {} bytes for {} segment(s)", OpName(operation), r.id,
               pages.size(), unsigned{r.nr_segments});
    RespondInOrder(r.id, operation, VNVRAMIF_RSP_ERROR, 0);
    return;
  }
  // Validated: page_offset + length <= nr_segments * 4096 <= pages.size()
  // and offset + length <= region size.
  std::byte* guest = pages.data() + r.page_offset;
  std::byte* ours = region_.data() + r.offset;
  if (into_guest) {
    std::memcpy(guest, ours, r.length);
    mapping->reset();  // unmap before answering
    stats_.bytes_read += r.length;
    RespondInOrder(r.id, operation, VNVRAMIF_RSP_OKAY, r.length);
  } else {
    std::memcpy(ours, guest, r.length);
    mapping->reset();
    stats_.bytes_written += r.length;
    AddToGroup(r, true, ByteRange{r.offset, r.length}, r.length);
  }
}

void RingServer::AddToGroup(const ValidatedRequest& r, bool has_range, ByteRange range,
                            uint64_t value) {
  if (has_range) group_ranges_.push_back(range);
  group_members_.push_back(GroupMember{r.id, static_cast<uint8_t>(r.op), value});
  if (!options_.group_commit) CommitGroup();
}

void RingServer::CommitGroup() {
  if (group_members_.empty()) return;
  int16_t status = VNVRAMIF_RSP_OKAY;
  uint64_t seq = 0;
  if (group_ranges_.empty()) {
    seq = sink_.DurableSeq();
  } else {
    const Nanos start = clock_.Now();
    Result<uint64_t> r = sink_.PersistBatch(group_ranges_);
    stats_.persist_latency.Record(clock_.Now() - start);
    ++stats_.sink_calls;
    if (group_members_.size() > 1) stats_.coalesced += group_members_.size();
    if (r.ok()) {
      seq = *r;
      for (const ByteRange& range : group_ranges_) stats_.bytes_persisted += range.length;
    } else {
      // Not the volume's primary (any more), or a primary that could not
      // get its replicas' acknowledgements in time (partitioned from them):
      // the frontend retries on the path whose backend can make the range
      // durable, this one included once it can again. Only a failure no
      // other path would change is an I/O error.
      const Code code = r.status().code();
      status = code == Code::kFailedPrecondition || code == Code::kUnavailable ? VNVRAMIF_RSP_EAGAIN
                                                                               : VNVRAMIF_RSP_ERROR;
      stats_.failed += group_members_.size();
      seq = sink_.DurableSeq();
      log_.Warn("persist of {} range(s) for {} request(s) failed: {}", group_ranges_.size(),
                group_members_.size(), r.status().ToString());
    }
  }
  for (const GroupMember& m : group_members_) {
    Respond(m.id, m.operation, status, status == VNVRAMIF_RSP_OKAY ? m.value : 0, seq);
  }
  group_members_.clear();
  group_ranges_.clear();
}

void RingServer::RespondInOrder(uint64_t id, uint8_t operation, int16_t status, uint64_t value) {
  CommitGroup();
  Respond(id, operation, status, value, sink_.DurableSeq());
}

void RingServer::Respond(uint64_t id, uint8_t operation, int16_t status, uint64_t value,
                         uint64_t durable_seq) {
  vnvramif_response rsp;
  std::memset(&rsp, 0, sizeof(rsp));
  rsp.id = id;
  rsp.operation = operation;
  rsp.status = status;
  rsp.durable_seq = durable_seq;
  rsp.value = value;
  // One response per request, in order: this slot's request has already
  // been copied out (rsp_prod_pvt < req_cons).
  StoreResponse(ring_, ring_.rsp_prod_pvt, rsp);
  ++ring_.rsp_prod_pvt;
  ++stats_.responses;
}

void RingServer::PushAndNotify() {
  // The macro reads the old rsp_prod back from shared memory; a guest that
  // scribbles on it can only change whether it gets a kick.
  int notify = 0;
  RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(&ring_, notify);
  if (notify && notify_) {
    notify_();
    ++stats_.notifies;
  }
}

}  // namespace vnvram::backend
