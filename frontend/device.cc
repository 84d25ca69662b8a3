// Device::Impl: libvnvram's implementation of vnvram::Device (see
// include/vnvram/vnvram.hpp for the contract). It owns the platform, the
// XenbusFrontend (control plane) and the live Connection (data plane), and
// keeps every request from submission to answer in `pending_`, so that a
// backend restart re-issues what was in flight instead of dropping it.
// Thread-safety: every public entry takes mu_ for its whole duration.
#include <algorithm>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

#include "common/clock.h"
#include "frontend/xenbus_frontend.h"
#include "platform/platform.h"
#include "vnvram/vnvram.hpp"
#include "vnvram/vnvramif.h"

namespace vnvram {
namespace {

using frontend::Completion;
using frontend::Connection;
using frontend::MappedRegion;
using frontend::XenbusFrontend;

constexpr size_t kMaxRetiredMappings = 8;
constexpr size_t kMaxCopyChunksInFlight = 8;
constexpr uint64_t kChunkBytes = uint64_t{VNVRAMIF_MAX_SEGMENTS} * VNVRAMIF_PAGE_SIZE;

std::string_view OpName(uint8_t op) {
  switch (op) {
    case VNVRAMIF_OP_PERSIST: return "PERSIST";
    case VNVRAMIF_OP_FLUSH: return "FLUSH";
    case VNVRAMIF_OP_BARRIER: return "BARRIER";
    case VNVRAMIF_OP_WRITE: return "WRITE";
    case VNVRAMIF_OP_READ: return "READ";
    case VNVRAMIF_OP_GET_INFO: return "GET_INFO";
    default: return "?";
  }
}

Status StatusFromResponse(const vnvramif_request& req, int16_t status) {
  std::string what = std::string(OpName(req.operation)) + " [" + std::to_string(req.offset) +
                     ", +" + std::to_string(req.length) + ")";
  switch (status) {
    case VNVRAMIF_RSP_OKAY: return Status::Ok();
    case VNVRAMIF_RSP_ERROR: return Status::IoError("backend failed " + what);
    case VNVRAMIF_RSP_EOPNOTSUPP: return Status::NotSupported("backend does not support " + what);
    case VNVRAMIF_RSP_EINVAL: return Status::InvalidArgument("backend rejected " + what);
    case VNVRAMIF_RSP_ERANGE: return Status::OutOfRange("backend: outside the region: " + what);
    case VNVRAMIF_RSP_EACCES:
      return Status::PermissionDenied("backend could not map the pages of " + what);
    case VNVRAMIF_RSP_EAGAIN:
      return Status::Unavailable("backend is not primary (fenced) for " + what);
    default: return Status::Corruption("unknown status for " + what);
  }
}

}  // namespace

class Device::Impl {
 public:
  Impl(OpenOptions options, std::unique_ptr<platform::Platform> platform,
       std::unique_ptr<XenbusFrontend> xb)
      : options_(std::move(options)), platform_(std::move(platform)), xb_(std::move(xb)) {}

  ~Impl() { (void)Close(); }

  // The first handshake.
  Status Open() {
    std::lock_guard lock(mu_);
    Deadline dl = NewDeadline();
    Status s = Establish(dl);
    if (!s.ok()) {
      if (s.code() == Code::kCorruption) {
        xb_->ReportFatal(s);  // error node + Closing, as blkfront does
      } else if (xb_->state() == frontend::XenbusState::kInitialised ||
                 xb_->state() == frontend::XenbusState::kConnected) {
        // Withdraw the ring we are about to free: the backend drops it
        // (back to InitWait) instead of mapping freed pages.
        (void)xb_->SetState(frontend::XenbusState::kInitialising);
      }
      conn_.reset();
      state_ = DeviceState::kClosed;  // nothing for the destructor to close
      return s;
    }
    state_ = DeviceState::kConnected;
    return Status::Ok();
  }

  std::span<std::byte> Region() {
    std::lock_guard lock(mu_);
    if (conn_ == nullptr && state_ != DeviceState::kReconnecting) return {};
    return MappedBytes();
  }
  uint64_t Generation() const { return generation_.load(std::memory_order_acquire); }
  uint64_t Size() const { return size_.load(std::memory_order_acquire); }
  uint64_t DurableSeq() const { return durable_seq_.load(std::memory_order_acquire); }
  DeviceState State() const {
    std::lock_guard lock(mu_);
    return state_;
  }
  Status Error() const {
    std::lock_guard lock(mu_);
    return error_;
  }

  Status Persist(uint64_t off, uint64_t len, bool async) {
    std::lock_guard lock(mu_);
    VNVRAM_RETURN_IF_ERROR(Usable());
    VNVRAM_RETURN_IF_ERROR(CheckRange(off, len));
    if (len == 0) return Status::Ok();
    vnvramif_request r{};
    r.operation = VNVRAMIF_OP_PERSIST;
    r.offset = off;
    r.length = len;
    return async ? QueueAsync(r) : CallSync(r, nullptr);
  }

  Status MemcpyPersist(uint64_t off, std::span<const std::byte> src) {
    std::lock_guard lock(mu_);
    VNVRAM_RETURN_IF_ERROR(Usable());
    VNVRAM_RETURN_IF_ERROR(CheckRange(off, src.size()));
    if (src.empty()) return Status::Ok();
    const std::span<std::byte> region = MappedBytes();
    if (region.size() < Size()) return Status::Unavailable("the region is not mapped");
    std::memcpy(region.data() + off, src.data(), src.size());
    vnvramif_request r{};
    r.operation = VNVRAMIF_OP_PERSIST;
    r.offset = off;
    r.length = src.size();
    return CallSync(r, nullptr);
  }

  Status Flush() {
    std::lock_guard lock(mu_);
    VNVRAM_RETURN_IF_ERROR(Usable());
    vnvramif_request r{};
    if (features_.feature_flush) {
      r.operation = VNVRAMIF_OP_FLUSH;
    } else {
      r.operation = VNVRAMIF_OP_PERSIST;  // the same thing, spelt out
      r.length = Size();
    }
    return QueueAsync(r);
  }

  Status Barrier() {
    std::lock_guard lock(mu_);
    VNVRAM_RETURN_IF_ERROR(Usable());
    if (!features_.feature_barrier) return DrainLocked(NewDeadline());
    vnvramif_request r{};
    r.operation = VNVRAMIF_OP_BARRIER;
    return QueueAsync(r);
  }

  Status Drain() {
    std::lock_guard lock(mu_);
    return DrainLocked(NewDeadline());
  }

  Status Copy(uint64_t off, bool is_read, std::byte* dst, const std::byte* src, uint64_t len) {
    std::lock_guard lock(mu_);
    VNVRAM_RETURN_IF_ERROR(Usable());
    if (!features_.feature_copy_mode) {
      return Status::NotSupported("backend does not offer copy mode");
    }
    VNVRAM_RETURN_IF_ERROR(CheckRange(off, len));
    if (len == 0) return Status::Ok();
    Deadline dl = NewDeadline();
    std::deque<uint64_t> tickets;
    Status first;
    uint64_t done = 0;
    while (done < len || !tickets.empty()) {
      if (done < len && tickets.size() < kMaxCopyChunksInFlight) {
        const uint64_t n = std::min(kChunkBytes, len - done);
        const size_t pages = (n + VNVRAMIF_PAGE_SIZE - 1) / VNVRAMIF_PAGE_SIZE;
        auto shared = sharer_share(pages, is_read);
        if (!shared.ok()) {
          first = shared.status();
          break;
        }
        std::shared_ptr<platform::SharedPages> buf = std::move(shared).value();
        if (!is_read) std::memcpy(buf->data().data(), src + done, n);
        vnvramif_request r{};
        r.operation = is_read ? VNVRAMIF_OP_READ : VNVRAMIF_OP_WRITE;
        r.offset = off + done;
        r.length = n;
        r.nr_segments = static_cast<uint8_t>(pages);
        for (size_t i = 0; i < pages; ++i) r.gref[i] = buf->refs()[i];
        const uint64_t t = Queue(r, /*async=*/false);
        pending_[t].pages = std::move(buf);
        pending_[t].copy_to = is_read ? dst + done : nullptr;
        tickets.push_back(t);
        done += n;
        continue;
      }
      Status s = IssueAndWait(tickets.front(), dl);
      tickets.pop_front();
      if (!s.ok() && first.ok()) first = s;
      if (!s.ok()) break;
    }
    for (uint64_t t : tickets) Abandon(t);
    return first;
  }

  Result<DeviceInfo> Info() {
    std::lock_guard lock(mu_);
    VNVRAM_RETURN_IF_ERROR(Usable());
    vnvramif_request r{};
    r.operation = VNVRAMIF_OP_GET_INFO;
    uint64_t value = 0;
    VNVRAM_RETURN_IF_ERROR(CallSync(r, &value));
    DeviceInfo i;
    i.region_size = value;
    i.durable_seq = DurableSeq();
    i.generation = Generation();
    i.ring_page_order = conn_ != nullptr ? conn_->ring_page_order : 0;
    i.backend_domid = xb_->backend();
    i.volume = xb_->volume().ToString();
    i.feature_flush = features_.feature_flush;
    i.feature_barrier = features_.feature_barrier;
    i.feature_copy_mode = features_.feature_copy_mode;
    return i;
  }

  Status Close() {
    std::lock_guard lock(mu_);
    if (state_ == DeviceState::kClosed || xb_ == nullptr) return Status::Ok();
    Deadline dl = NewDeadline();
    Status result;
    if (state_ == DeviceState::kConnected) result = DrainLocked(dl);
    // Only a live connection needs the backend to let go of our ring first;
    // a backend that broke the protocol, or that is gone, is not waited for.
    const bool trusted = state_ == DeviceState::kConnected;
    Status c = xb_->Close(
        dl,
        [this] {
          conn_.reset();
          retired_.clear();
        },
        trusted);
    if (result.ok()) result = c;
    FailAllPending(Status::Unavailable("device closed"));
    state_ = DeviceState::kClosed;
    xb_.reset();
    return result;
  }

 private:
  struct Pending {
    vnvramif_request req{};  // as queued; the ring id is assigned per issue
    bool async = false;
    bool issued = false;
    bool done = false;
    bool abandoned = false;  // the caller stopped waiting: drop the answer
    Status status;
    uint64_t value = 0;
    std::shared_ptr<platform::SharedPages> pages;  // copy-mode buffer
    std::byte* copy_to = nullptr;                  // READ: caller's buffer
  };

  Deadline NewDeadline() const { return Deadline(SystemClock::Instance(), options_.timeout); }

  // Where loads and stores go: the live connection's mapping or, while
  // reconnecting, the last retired one (still mapped); empty when neither.
  std::span<std::byte> MappedBytes() const {
    if (const Connection* c = conn_.get(); c != nullptr) return c->region.bytes;
    if (!retired_.empty()) return retired_.back().bytes;
    return {};
  }

  Result<std::unique_ptr<platform::SharedPages>> sharer_share(size_t pages, bool writable) {
    return copy_sharer_->Share(xb_->backend(), pages, writable);
  }

  Status Usable() const {
    switch (state_) {
      case DeviceState::kConnected:
      case DeviceState::kReconnecting: return Status::Ok();
      case DeviceState::kError: return error_;
      case DeviceState::kClosed: return Status::FailedPrecondition("device is closed");
    }
    return Status::Internal("bad device state");
  }

  Status CheckRange(uint64_t off, uint64_t len) const {
    const uint64_t size = Size();
    if (off > size || len > size - off) {
      return Status::OutOfRange("range [" + std::to_string(off) + ", +" + std::to_string(len) +
                                ") is outside the " + std::to_string(size) + "-byte region");
    }
    return Status::Ok();
  }

  // Handshake, then a GET_INFO round trip that proves the ring is served
  // and the region size is what xenstore said.
  Status Establish(const Deadline& dl) {
    for (;;) {
      auto c = xb_->Connect(options_.ring_page_order, dl);
      if (!c.ok()) return c.status();
      conn_ = std::move(c).value();
      Status p = Probe(dl);
      if (p.ok()) break;
      conn_.reset();
      if (p.code() != Code::kAborted || dl.Expired()) return p;
      xb_->log().Warn("backend changed state during the first request; handshaking again");
    }
    if (copy_sharer_ == nullptr) {
      auto s = platform_->OpenGrantSharer();
      if (!s.ok()) return s.status().WithContext("opening the copy-mode grant sharer");
      copy_sharer_ = std::move(s).value();
    }
    features_ = conn_->geometry;
    size_.store(conn_->geometry.region_size, std::memory_order_release);
    generation_.fetch_add(1, std::memory_order_acq_rel);
    return Status::Ok();
  }

  Status Probe(const Deadline& dl) {
    vnvramif_request r{};
    r.operation = VNVRAMIF_OP_GET_INFO;
    VNVRAM_ASSIGN_OR_RETURN(const uint64_t id, conn_->ring->Submit(r));
    VNVRAM_RETURN_IF_ERROR(conn_->ring->Kick());
    for (;;) {
      VNVRAM_ASSIGN_OR_RETURN(std::vector<Completion> got, conn_->ring->Poll());
      for (const Completion& c : got) {
        if (c.id != id) continue;
        if (c.status != VNVRAMIF_RSP_OKAY) return StatusFromResponse(r, c.status);
        if (c.value != conn_->geometry.region_size) {
          return Status::Corruption("backend GET_INFO says the region has " +
                                    std::to_string(c.value) + " bytes, xenstore says " +
                                    std::to_string(conn_->geometry.region_size));
        }
        NoteSeq(c.durable_seq);
        return Status::Ok();
      }
      if (dl.Expired()) return Status::Timeout("backend did not answer GET_INFO after Connected");
      VNVRAM_ASSIGN_OR_RETURN(auto a, xb_->WaitForActivity(conn_.get(), dl));
      if (a.watch) {
        VNVRAM_ASSIGN_OR_RETURN(auto be, xb_->BackendState());
        if (be != frontend::XenbusState::kConnected) {
          return Status::Aborted("backend left Connected");
        }
      }
    }
  }

  void NoteSeq(uint64_t seq) {
    uint64_t cur = durable_seq_.load(std::memory_order_acquire);
    while (seq > cur && !durable_seq_.compare_exchange_weak(cur, seq)) {
    }
  }

  uint64_t Queue(const vnvramif_request& r, bool async) {
    const uint64_t t = next_ticket_++;
    Pending p;
    p.req = r;
    p.async = async;
    pending_.emplace(t, std::move(p));
    return t;
  }

  // Pushes queued requests in ticket order while the ring has room.
  Status IssueQueued() {
    if (conn_ == nullptr) return Status::Ok();
    bool any = false;
    for (auto& [t, p] : pending_) {
      if (p.issued || p.done) continue;
      if (conn_->ring->in_flight() >= conn_->ring->ring_size()) break;
      auto id = conn_->ring->Submit(p.req);
      if (!id.ok()) {
        if (id.status().code() == Code::kResourceExhausted) break;
        return Fail(id.status());
      }
      p.issued = true;
      ring_ids_[*id] = t;
      any = true;
    }
    if (any) {
      Status k = conn_->ring->Kick();
      if (!k.ok()) return Fail(k);
    }
    return Status::Ok();
  }

  Status QueueAsync(const vnvramif_request& r) {
    Queue(r, /*async=*/true);
    Deadline dl = NewDeadline();
    VNVRAM_RETURN_IF_ERROR(IssueQueued());
    // Do not let the queue grow past what the ring holds.
    return Pump(dl, [this] { return Unissued() == 0; });
  }

  size_t Unissued() const {
    size_t n = 0;
    for (const auto& [t, p] : pending_) n += (!p.issued && !p.done) ? 1 : 0;
    return n;
  }

  Status CallSync(const vnvramif_request& r, uint64_t* value) {
    const uint64_t t = Queue(r, /*async=*/false);
    Status s = IssueAndWait(t, NewDeadline());
    if (s.ok() && value != nullptr) *value = last_value_;
    return s;
  }

  // Waits for ticket `t`; removes it and returns its status.
  Status IssueAndWait(uint64_t t, const Deadline& dl) {
    Status s = IssueQueued();
    if (s.ok()) {
      s = Pump(dl, [this, t] {
        auto it = pending_.find(t);
        return it == pending_.end() || it->second.done;
      });
    }
    auto it = pending_.find(t);
    if (!s.ok()) {
      Abandon(t);
      return s;
    }
    if (it == pending_.end()) return Status::Internal("request vanished");
    Status result = it->second.status;
    last_value_ = it->second.value;
    pending_.erase(it);
    return result;
  }

  void Abandon(uint64_t t) {
    auto it = pending_.find(t);
    if (it == pending_.end()) return;
    if (it->second.done || !it->second.issued) {
      pending_.erase(it);
    } else {
      it->second.abandoned = true;
      it->second.copy_to = nullptr;
    }
  }

  Status DrainLocked(const Deadline& dl) {
    VNVRAM_RETURN_IF_ERROR(Usable());
    VNVRAM_RETURN_IF_ERROR(IssueQueued());
    Status s = Pump(dl, [this] {
      for (const auto& [t, p] : pending_) {
        if (p.async && !p.done) return false;
      }
      return true;
    });
    if (!s.ok()) return s;
    Status e = std::move(async_error_);
    async_error_ = Status::Ok();
    return e;
  }

  void Complete(const Completion& c) {
    auto m = ring_ids_.find(c.id);
    if (m == ring_ids_.end()) return;  // RingClient only passes ids we issued
    const uint64_t t = m->second;
    ring_ids_.erase(m);
    auto it = pending_.find(t);
    if (it == pending_.end()) return;
    Pending& p = it->second;
    NoteSeq(c.durable_seq);
    Status s = StatusFromResponse(p.req, c.status);
    if (s.ok() && (p.req.operation == VNVRAMIF_OP_READ || p.req.operation == VNVRAMIF_OP_WRITE) &&
        c.value != p.req.length) {
      s = Status::Corruption("backend says " + std::to_string(c.value) + " bytes moved by " +
                             std::string(OpName(p.req.operation)) + " of " +
                             std::to_string(p.req.length));
    }
    if (s.ok() && p.req.operation == VNVRAMIF_OP_READ && p.copy_to != nullptr) {
      std::memcpy(p.copy_to, p.pages->data().data(), p.req.length);
    }
    if (p.abandoned) {
      pending_.erase(it);
      return;
    }
    if (p.async) {
      if (!s.ok() && async_error_.ok()) async_error_ = s;
      pending_.erase(it);
      return;
    }
    p.done = true;
    p.status = s;
    p.value = c.value;
  }

  void FailAllPending(const Status& why) {
    for (auto it = pending_.begin(); it != pending_.end();) {
      Pending& p = it->second;
      if (p.abandoned || p.async) {
        if (p.async && !p.abandoned && async_error_.ok()) async_error_ = why;
        it = pending_.erase(it);
        continue;
      }
      p.done = true;
      p.status = why;
      ++it;
    }
    ring_ids_.clear();
  }

  // A sticky device error: the backend cannot be trusted any more.
  Status Fail(const Status& why) {
    if (state_ == DeviceState::kError) return error_;
    error_ = why;
    state_ = DeviceState::kError;
    xb_->ReportFatal(why);
    RetireConnection();
    FailAllPending(why);
    return error_;
  }

  void RetireConnection() {
    if (conn_ == nullptr) return;
    retired_.push_back(std::move(conn_->region));
    while (retired_.size() > kMaxRetiredMappings) retired_.pop_front();
    conn_.reset();
    ring_ids_.clear();
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (it->second.abandoned) {
        it = pending_.erase(it);  // its caller was told it failed
      } else {
        it->second.issued = false;  // re-issued on the next connection
        ++it;
      }
    }
  }

  // Runs the event loop until `done()` holds or the deadline passes.
  Status Pump(const Deadline& dl, const std::function<bool()>& done) {
    for (;;) {
      if (state_ == DeviceState::kError) return error_;
      if (state_ == DeviceState::kClosed) return Status::Unavailable("device closed (detached)");
      if (conn_ != nullptr) {
        auto got = conn_->ring->Poll();
        if (!got.ok()) return Fail(got.status());
        for (const Completion& c : *got) Complete(c);
        VNVRAM_RETURN_IF_ERROR(IssueQueued());
      }
      if (done()) return Status::Ok();
      if (conn_ == nullptr && !dl.Expired()) {
        // Disconnected (an earlier re-handshake gave up): try again now.
        VNVRAM_RETURN_IF_ERROR(BackendChanged(dl));
        continue;
      }
      if (dl.Expired()) {
        return Status::Timeout(conn_ != nullptr ? "backend did not answer in time"
                                                : "backend did not come back in time");
      }
      auto a = xb_->WaitForActivity(conn_.get(), dl);
      if (!a.ok()) return a.status();
      if (a->watch) VNVRAM_RETURN_IF_ERROR(BackendChanged(dl));
    }
  }

  // The switch on the backend's state, while we are (or were) connected.
  Status BackendChanged(const Deadline& dl) {
    auto be = xb_->BackendState();
    if (!be.ok()) {
      if (be.status().code() == Code::kCorruption) return Fail(be.status());
      return be.status();
    }
    auto online = xb_->BackendOnline();
    if (!online.ok()) {
      if (online.status().code() == Code::kCorruption) return Fail(online.status());
      return online.status();
    }
    using S = frontend::XenbusState;
    if (*be == S::kUnknown || !*online) {
      // Detached: the toolstack set online = 0 (or removed the directory).
      xb_->log().Info("device detached by the toolstack; closing");
      FailAllPending(Status::Unavailable("device detached"));
      Deadline short_dl(SystemClock::Instance(),
                        std::min<Nanos>(dl.Remaining(), Nanos{1'000'000'000}));
      (void)xb_->Close(short_dl, [this] { RetireConnection(); });
      state_ = DeviceState::kClosed;
      return Status::Unavailable("device detached");
    }
    switch (*be) {
      case S::kConnected:
        if (conn_ != nullptr) return Status::Ok();
        return Reconnect(dl);  // we lost an earlier attempt; try again
      case S::kInitialising:
      case S::kInitWait:
      case S::kClosed:
        // The backend restarted (new grants) or reset the device.
        return Reconnect(dl);
      case S::kClosing: {
        const std::string err = xb_->BackendError();
        if (!err.empty()) return Fail(Status::Unavailable("backend closed the device: " + err));
        return Reconnect(dl);
      }
      default:
        return Fail(Status::Corruption("backend went to state " +
                                       std::string(schema::XenbusStateName(*be))));
    }
  }

  Status Reconnect(const Deadline& dl) {
    if (conn_ != nullptr) {
      xb_->log().Warn("backend restarted or reset the device: handshaking again");
    }
    RetireConnection();
    state_ = DeviceState::kReconnecting;
    const uint64_t old_size = Size();
    Status s = Establish(dl);
    if (!s.ok()) {
      if (s.code() == Code::kCorruption) return Fail(s);
      return s;  // still kReconnecting: the next watch event tries again
    }
    if (conn_->geometry.region_size != old_size) {
      return Fail(Status::Corruption(
          "the region changed size across a backend restart: " + std::to_string(old_size) + " -> " +
          std::to_string(conn_->geometry.region_size)));
    }
    // Carry what in-flight persists cover into the new mapping, so the
    // re-issued requests make the caller's bytes durable.
    if (!retired_.empty()) {
      std::span<const std::byte> old = retired_.back().bytes;
      std::span<std::byte> now = conn_->region.bytes;
      for (const auto& [t, p] : pending_) {
        if (p.done) continue;
        if (p.req.operation == VNVRAMIF_OP_FLUSH) {
          std::memcpy(now.data(), old.data(), now.size());
        } else if (p.req.operation == VNVRAMIF_OP_PERSIST && p.req.offset <= now.size() &&
                   p.req.length <= now.size() - p.req.offset) {
          std::memcpy(now.data() + p.req.offset, old.data() + p.req.offset, p.req.length);
        }
      }
    }
    state_ = DeviceState::kConnected;
    xb_->log().Info("reconnected (generation {}); re-issuing {} request(s)", Generation(),
                    pending_.size());
    return IssueQueued();
  }

  mutable std::mutex mu_;
  const OpenOptions options_;
  std::unique_ptr<platform::Platform> platform_;
  std::unique_ptr<XenbusFrontend> xb_;
  std::unique_ptr<platform::GrantSharer> copy_sharer_;
  std::unique_ptr<Connection> conn_;
  std::deque<MappedRegion> retired_;
  frontend::BackendGeometry features_;
  std::map<uint64_t, Pending> pending_;              // by ticket = submission order
  std::unordered_map<uint64_t, uint64_t> ring_ids_;  // ring id -> ticket
  uint64_t next_ticket_ = 1;
  uint64_t last_value_ = 0;
  Status async_error_;
  DeviceState state_ = DeviceState::kReconnecting;
  Status error_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<uint64_t> size_{0};
  std::atomic<uint64_t> durable_seq_{0};
};

Result<std::unique_ptr<Device>> Device::Open(const OpenOptions& options) {
  if (options.timeout.count() <= 0) return Status::InvalidArgument("timeout must be positive");
  if (options.ring_page_order > VNVRAMIF_MAX_RING_PAGE_ORDER) {
    return Status::InvalidArgument("ring_page_order " + std::to_string(options.ring_page_order) +
                                   " exceeds " + std::to_string(VNVRAMIF_MAX_RING_PAGE_ORDER));
  }
  VNVRAM_ASSIGN_OR_RETURN(auto platform, platform::OpenPlatform(options.platform));
  DevId dev = options.devid;
  if (!options.volume.empty()) {
    VNVRAM_ASSIGN_OR_RETURN(const Uuid volume, ParseUuid(options.volume, "volume"));
    VNVRAM_ASSIGN_OR_RETURN(dev, frontend::XenbusFrontend::FindDeviceByVolume(*platform, volume));
  }
  VNVRAM_ASSIGN_OR_RETURN(auto xb, frontend::XenbusFrontend::Open(*platform, dev));
  auto impl = std::make_unique<Impl>(options, std::move(platform), std::move(xb));
  VNVRAM_RETURN_IF_ERROR(impl->Open());
  return std::unique_ptr<Device>(new Device(std::move(impl)));
}

Device::Device(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Device::~Device() = default;

std::span<std::byte> Device::region() {
  return impl_->Region();
}
uint64_t Device::generation() const {
  return impl_->Generation();
}
uint64_t Device::size() const {
  return impl_->Size();
}
Status Device::persist(uint64_t offset, uint64_t length) {
  return impl_->Persist(offset, length, false);
}
Status Device::memcpy_persist(uint64_t offset, std::span<const std::byte> src) {
  return impl_->MemcpyPersist(offset, src);
}
Status Device::persist_async(uint64_t offset, uint64_t length) {
  return impl_->Persist(offset, length, true);
}
Status Device::flush() {
  return impl_->Flush();
}
Status Device::drain() {
  return impl_->Drain();
}
Status Device::barrier() {
  return impl_->Barrier();
}
Status Device::read(uint64_t offset, std::span<std::byte> dst) {
  return impl_->Copy(offset, /*is_read=*/true, dst.data(), nullptr, dst.size());
}
Status Device::write(uint64_t offset, std::span<const std::byte> src) {
  return impl_->Copy(offset, /*is_read=*/false, nullptr, src.data(), src.size());
}
Result<DeviceInfo> Device::info() {
  return impl_->Info();
}
uint64_t Device::durable_seq() const {
  return impl_->DurableSeq();
}
DeviceState Device::state() const {
  return impl_->State();
}
Status Device::error() const {
  return impl_->Error();
}
Status Device::close() {
  return impl_->Close();
}

}  // namespace vnvram
