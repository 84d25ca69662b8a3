// Device::Impl: libvnvram's implementation of vnvram::Device (see
// include/vnvram/vnvram.hpp for the contract). It owns the platform, one
// Path per xenbus device of the volume (control plane: XenbusFrontend;
// data plane: the path's Connection), the multipath directory, and every
// request from submission to answer in `pending_`, so that a backend
// restart or a path switch re-issues what was in flight instead of
// dropping it. Failover logic: docs/multipath.md.
// Thread-safety: every public entry takes mu_ for its whole duration; the
// monitor thread takes it to serve watch events while no call is running.
#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "frontend/multipath_state.h"
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
using XS = frontend::XenbusState;
namespace fe = schema::fe;
namespace be = schema::be;
namespace mp = schema::mp;

constexpr size_t kMaxRetiredMappings = 8;
constexpr size_t kMaxCopyChunksInFlight = 8;
constexpr uint64_t kChunkBytes = uint64_t{VNVRAMIF_MAX_SEGMENTS} * VNVRAMIF_PAGE_SIZE;
// A failover tries one candidate for at most this long while others remain.
constexpr Nanos kCandidateBudget = std::chrono::seconds(5);
// At open, how long a path whose backend says it is the primary, on its way
// to InitWait, is waited for before another path is asked to take over.
constexpr Nanos kServingPathGrace = std::chrono::seconds(1);
// Closing a standby path does not wait longer than this for its backend.
constexpr Nanos kStandbyCloseBudget = std::chrono::seconds(1);
// The monitor thread looks at the paths at least this often.
constexpr int kMonitorPeriodMs = 1000;
// After a failover that found no path: the first retry (even without a
// xenstore change) after kRecoverRetryMin, doubling up to kRecoverRetryMax.
constexpr Nanos kRecoverRetryMin = std::chrono::milliseconds(250);
constexpr Nanos kRecoverRetryMax = std::chrono::seconds(2);
// A request unanswered this long while a connected standby reports the
// primary unreachable gets the active path probed (again at most this
// often), even if that report was never seen changing from up: a standby
// that restarted may publish "down" first and never "up" (its link to the
// primary came and went between two publications).
constexpr Nanos kHintProbeAfter = std::chrono::milliseconds(500);

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

// Why the active path is being left (the failover/reason values).
enum class Reason : uint8_t {
  kOperator,
  kBackendClosed,
  kBackendGone,
  kRingTimeout,
  kNotPrimary,
  kPathError
};

std::string_view ReasonValue(Reason r) {
  switch (r) {
    case Reason::kOperator: return mp::kFailoverReasonOperator;
    case Reason::kBackendClosed: return mp::kFailoverReasonBackendClosed;
    case Reason::kBackendGone: return mp::kFailoverReasonBackendGone;
    case Reason::kRingTimeout: return mp::kFailoverReasonRingTimeout;
    case Reason::kNotPrimary: return mp::kFailoverReasonNotPrimary;
    case Reason::kPathError: return mp::kFailoverReasonPathError;
  }
  return mp::kFailoverReasonBackendGone;
}

// One path of the volume: its control plane, its connection when it has
// one, and what its backend last published.
struct Path {
  std::unique_ptr<XenbusFrontend> xb;
  std::unique_ptr<Connection> conn;
  bool failed = false;  // broke the protocol: never used again
  bool gone = false;    // its backend is offline or its nodes are removed (detached)
  uint64_t activate_sent = 0;
  std::string role;  // backend's role key; "" when absent (a local volume)
  uint64_t epoch = 0;
  bool primary_link = true;
  std::string published_role;  // our path-role value last written

  DevId dev() const { return xb->dev(); }
  bool usable() const { return !failed && !gone; }
  bool ready() const { return conn != nullptr && usable(); }
  // A backend that serves the volume now, as far as xenstore tells.
  bool serving() const { return role.empty() || role == be::kRolePrimary; }
};

// What the backend of a path published, read in one go.
struct BackendView {
  XS state = XS::kUnknown;
  bool online = false;
  std::string role;
  uint64_t epoch = 0;
  bool primary_link = true;
};

struct ActivationResult {
  enum class Kind : uint8_t { kOk, kNoMajority, kTimeout, kError };
  Kind kind = Kind::kOk;
  std::string message;
};

}  // namespace

class Device::Impl {
 public:
  Impl(OpenOptions options, std::unique_ptr<platform::Platform> platform, Uuid volume,
       std::unique_ptr<XenbusFrontend> first)
      : options_(std::move(options)),
        platform_(std::move(platform)),
        volume_(volume),
        preferred_(first ? std::optional<DevId>(first->dev()) : std::nullopt),
        first_(std::move(first)) {}

  ~Impl() { (void)Close(); }

  // Opens every path, connects, chooses the active path, starts the
  // monitor thread.
  Status Open() {
    std::unique_lock lock(mu_);
    const Deadline dl = NewDeadline();
    Status s = LoadPaths();
    if (s.ok()) s = FirstConnect(dl);
    if (!s.ok()) {
      for (auto& [dev, p] : paths_) {
        if (p->failed) continue;
        if (p->xb->state() == XS::kInitialised || p->xb->state() == XS::kConnected) {
          // Withdraw the ring we are about to free: the backend drops it
          // (back to InitWait) instead of mapping freed pages.
          (void)p->xb->SetState(XS::kInitialising);
        }
        p->conn.reset();
      }
      active_ = nullptr;
      state_ = DeviceState::kClosed;  // nothing for the destructor to close
      return s;
    }
    state_ = DeviceState::kConnected;
    PublishGroup();
    lock.unlock();
    StartMonitor();
    return Status::Ok();
  }

  std::span<std::byte> Region() {
    std::lock_guard lock(mu_);
    if (pending_switch_ != nullptr) {
      FinishSwitch(Deadline(SystemClock::Instance(), Nanos(options_.timeout)));
    }
    // A device the toolstack detached keeps its last mapping until close():
    // a caller's stores stay harmless and its next call reports the detach.
    if (ActiveConn() == nullptr && state_ != DeviceState::kReconnecting && !detached_) return {};
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

  Status Drain(size_t at_most = 0) {
    std::lock_guard lock(mu_);
    return DrainLocked(NewDeadline(), at_most);
  }

  Status Copy(uint64_t off, bool is_read, std::byte* dst, const std::byte* src, uint64_t len) {
    std::lock_guard lock(mu_);
    VNVRAM_RETURN_IF_ERROR(Usable());
    if (!features_.feature_copy_mode) {
      return Status::NotSupported("backend does not offer copy mode");
    }
    VNVRAM_RETURN_IF_ERROR(CheckRange(off, len));
    if (len == 0) return Status::Ok();
    const Deadline dl = NewDeadline();
    // Copy buffers are granted to the active path's backend: wait for one.
    if (active_ == nullptr) {
      VNVRAM_RETURN_IF_ERROR(Pump(dl, [this] { return active_ != nullptr; }));
    }
    std::deque<uint64_t> tickets;
    Status first;
    uint64_t done = 0;
    while (done < len || !tickets.empty()) {
      if (done < len && tickets.size() < kMaxCopyChunksInFlight && active_ != nullptr) {
        const uint64_t n = std::min(kChunkBytes, len - done);
        const size_t pages = (n + VNVRAMIF_PAGE_SIZE - 1) / VNVRAMIF_PAGE_SIZE;
        auto shared = copy_sharer_->Share(active_->xb->backend(), pages, is_read);
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
        pending_[t].copy_domid = active_->xb->backend();
        tickets.push_back(t);
        done += n;
        continue;
      }
      if (tickets.empty()) {
        first = Status::Unavailable("no active path");
        break;
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
    if (const Path* cur = Current(); cur != nullptr) {
      i.ring_page_order = cur->conn != nullptr ? cur->conn->ring_page_order : 0;
      i.backend_domid = cur->xb->backend();
      i.active_path = cur->dev();
    }
    i.failovers = failovers_;
    i.volume = volume_.ToString();
    i.feature_flush = features_.feature_flush;
    i.feature_barrier = features_.feature_barrier;
    i.feature_copy_mode = features_.feature_copy_mode;
    return i;
  }

  std::vector<PathInfo> Paths() const {
    std::lock_guard lock(mu_);
    std::vector<PathInfo> out;
    for (const auto& [dev, p] : paths_) {
      PathInfo i;
      i.devid = dev;
      i.backend_domid = p->xb->backend();
      i.priority = p->xb->priority();
      i.state = p->failed              ? PathState::kFailed
                : p.get() == Current() ? PathState::kActive
                : p->conn != nullptr   ? PathState::kStandby
                                       : PathState::kDown;
      i.role = p->role;
      i.epoch = p->epoch;
      out.push_back(std::move(i));
    }
    return out;
  }

  Status Close() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    StopMonitor();
    std::lock_guard lock(mu_);
    if (state_ == DeviceState::kClosed || paths_.empty()) return Status::Ok();
    const Deadline dl = NewDeadline();
    Status result;
    if (state_ == DeviceState::kConnected) result = DrainLocked(dl);
    for (auto& [dev, p] : paths_) {
      // Only a live connection needs the backend to let go of our ring
      // first; a backend that broke the protocol, or is gone, is not waited
      // for, nor a standby for long.
      const bool trusted = p->conn != nullptr && !p->failed &&
                           (p.get() != active_ || state_ == DeviceState::kConnected);
      const Deadline pdl = p.get() == active_
                               ? dl
                               : Deadline(SystemClock::Instance(),
                                          std::min<Nanos>(dl.Remaining(), kStandbyCloseBudget));
      Path* raw = p.get();
      Status c = p->xb->Close(
          pdl, [raw] { raw->conn.reset(); }, trusted);
      if (p.get() == active_ && result.ok()) result = c;
    }
    retired_.clear();
    FailAllPending(Status::Unavailable("device closed"));
    state_ = DeviceState::kClosed;
    active_ = nullptr;
    pending_switch_ = nullptr;
    // The multipath directory keeps the last state this opener published.
    paths_.clear();
    mp_.reset();
    return result;
  }

 private:
  struct Pending {
    vnvramif_request req{};  // as queued; the ring id is assigned per issue
    bool async = false;
    bool issued = false;
    bool done = false;
    bool abandoned = false;  // the caller stopped waiting: drop the answer
    Nanos issued_at{0};
    Status status;
    uint64_t value = 0;
    std::shared_ptr<platform::SharedPages> pages;  // copy-mode buffer
    DomId copy_domid = 0;                          // whom `pages` are granted to
    std::byte* copy_to = nullptr;                  // READ: caller's buffer
  };

  // An automatic or operator failover to run.
  struct Plan {
    Reason reason = Reason::kBackendGone;
    std::optional<DevId> target;
    bool force = true;
    uint64_t request = 0;
    std::chrono::milliseconds timeout{10000};
  };

  Deadline NewDeadline() const { return Deadline(SystemClock::Instance(), options_.timeout); }

  Connection* ActiveConn() const { return active_ != nullptr ? active_->conn.get() : nullptr; }

  // Where loads and stores go: the active connection's mapping or, while
  // reconnecting, the last retired one (still mapped); empty when neither.
  std::span<std::byte> MappedBytes() const {
    if (const Connection* c = ActiveConn(); c != nullptr) return c->region.bytes;
    if (!retired_.empty()) return retired_.back().bytes;
    return {};
  }

  Status Usable() const {
    switch (state_) {
      case DeviceState::kConnected:
      case DeviceState::kReconnecting: return Status::Ok();
      case DeviceState::kError: return error_;
      case DeviceState::kClosed:
        return detached_ ? Status::Unavailable("device detached")
                         : Status::FailedPrecondition("device is closed");
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

  const log::Context& Log() const {
    if (active_ != nullptr) return active_->xb->log();
    if (!paths_.empty()) return paths_.begin()->second->xb->log();
    static const log::Context none("vnvram");
    return none;
  }

  // ---- paths -----------------------------------------------------------

  Status LoadPaths() {
    VNVRAM_ASSIGN_OR_RETURN(auto xs, platform_->OpenXenStore());
    VNVRAM_ASSIGN_OR_RETURN(std::vector<DevId> devs, XenbusFrontend::FindDevicesByVolume(
                                                         *xs, platform_->self_domid(), volume_));
    if (first_ != nullptr) {
      const DevId d = first_->dev();
      auto p = std::make_unique<Path>();
      p->xb = std::move(first_);
      paths_.emplace(d, std::move(p));
    }
    for (DevId d : devs) {
      if (paths_.count(d) != 0) continue;
      auto xb = XenbusFrontend::Open(*platform_, d);
      if (!xb.ok()) {
        // Another path's trouble is that path's: log it and go on.
        spdlog::warn("volume {}: path {} unusable: {}", volume_.ToString(), d,
                     xb.status().ToString());
        continue;
      }
      auto p = std::make_unique<Path>();
      p->xb = std::move(xb).value();
      paths_.emplace(d, std::move(p));
    }
    if (paths_.empty()) {
      return Status::NotFound("no vnvram device of volume " + volume_.ToString() + " in domain " +
                              std::to_string(platform_->self_domid()));
    }
    for (auto& [dev, p] : paths_) {
      // Continue the activate numbering of an earlier opener.
      if (auto a = p->xb->ReadFrontendKey(fe::kActivate); a.ok() && *a) {
        p->activate_sent = ParseU64(**a).value_or(0);
      }
    }
    VNVRAM_ASSIGN_OR_RETURN(mp_, frontend::MultipathState::Open(*platform_, volume_));
    auto s = platform_->OpenGrantSharer();
    if (!s.ok()) return s.status().WithContext("opening the copy-mode grant sharer");
    copy_sharer_ = std::move(s).value();
    return Status::Ok();
  }

  // Paths in the order we prefer them: the one opened by devid, then by
  // priority (higher first), then by devid.
  std::vector<Path*> Ordered() {
    std::vector<Path*> out;
    for (auto& [dev, p] : paths_) out.push_back(p.get());
    std::stable_sort(out.begin(), out.end(), [this](const Path* a, const Path* b) {
      const bool pa = preferred_ && a->dev() == *preferred_;
      const bool pb = preferred_ && b->dev() == *preferred_;
      if (pa != pb) return pa;
      if (a->xb->priority() != b->xb->priority()) return a->xb->priority() > b->xb->priority();
      return a->dev() < b->dev();
    });
    return out;
  }

  Result<BackendView> ReadView(Path& p) {
    BackendView v;
    VNVRAM_ASSIGN_OR_RETURN(v.state, p.xb->BackendState());
    VNVRAM_ASSIGN_OR_RETURN(v.online, p.xb->BackendOnline());
    VNVRAM_ASSIGN_OR_RETURN(auto role, p.xb->ReadBackendKey(be::kRole));
    if (role) {
      if (*role != be::kRolePrimary && *role != be::kRoleReplica && *role != be::kRoleFenced) {
        return Status::Corruption("backend role '" + Printable(*role, 32) + "' is not a role");
      }
      v.role = *role;
    }
    VNVRAM_ASSIGN_OR_RETURN(auto epoch, p.xb->ReadBackendKey(be::kEpoch));
    if (epoch) v.epoch = ParseU64(*epoch).value_or(0);
    VNVRAM_ASSIGN_OR_RETURN(auto link, p.xb->ReadBackendKey(be::kPrimaryLink));
    v.primary_link = !link || *link != be::kPrimaryLinkDown;
    return v;
  }

  // Handshake on `p`, then a GET_INFO round trip that proves the ring is
  // served and the region has the size xenstore (and the other paths) say.
  Status ConnectPath(Path& p, const Deadline& dl) {
    for (;;) {
      auto c = p.xb->Connect(options_.ring_page_order, dl);
      if (!c.ok()) {
        if (c.status().code() == Code::kCorruption) FailPath(p, c.status());
        return c.status();
      }
      p.conn = std::move(c).value();
      Status s = ProbePath(p, dl);
      if (s.ok()) break;
      if (s.code() == Code::kCorruption) {
        p.conn.reset();
        FailPath(p, s);
        return s;
      }
      if (s.code() != Code::kAborted || dl.Expired()) {
        // Initialising before the ring's grants go (see Connect).
        (void)p.xb->SetState(XS::kInitialising);
        p.conn.reset();
        return s;
      }
      p.conn.reset();
      p.xb->log().Warn("backend changed state during the first request; handshaking again");
    }
    const uint64_t size = p.conn->geometry.region_size;
    if (Size() == 0) {
      size_.store(size, std::memory_order_release);
    } else if (size != Size()) {
      Status bad =
          Status::Corruption("path " + std::to_string(p.dev()) + " has a " + std::to_string(size) +
                             "-byte region, the volume " + std::to_string(Size()));
      FailPath(p, bad);
      return bad;
    }
    if (auto v = ReadView(p); v.ok()) {
      p.role = v->role;
      p.epoch = v->epoch;
      p.primary_link = v->primary_link;
    }
    return Status::Ok();
  }

  Status ProbePath(Path& p, const Deadline& dl) {
    vnvramif_request r{};
    r.operation = VNVRAMIF_OP_GET_INFO;
    VNVRAM_ASSIGN_OR_RETURN(const uint64_t id, p.conn->ring->Submit(r));
    VNVRAM_RETURN_IF_ERROR(p.conn->ring->Kick());
    for (;;) {
      VNVRAM_ASSIGN_OR_RETURN(std::vector<Completion> got, p.conn->ring->Poll());
      for (const Completion& c : got) {
        if (c.id != id) continue;
        if (c.status != VNVRAMIF_RSP_OKAY) return StatusFromResponse(r, c.status);
        if (c.value != p.conn->geometry.region_size) {
          return Status::Corruption("backend GET_INFO says the region has " +
                                    std::to_string(c.value) + " bytes, xenstore says " +
                                    std::to_string(p.conn->geometry.region_size));
        }
        NoteSeq(c.durable_seq);
        return Status::Ok();
      }
      if (dl.Expired()) return Status::Timeout("backend did not answer GET_INFO after Connected");
      VNVRAM_ASSIGN_OR_RETURN(auto a, p.xb->WaitForActivity(p.conn.get(), dl));
      if (a.watch) {
        VNVRAM_ASSIGN_OR_RETURN(auto st, p.xb->BackendState());
        if (st != XS::kConnected) return Status::Aborted("backend left Connected");
      }
    }
  }

  // A path whose backend broke the protocol: its error node, Closing, never
  // used again.
  void FailPath(Path& p, const Status& why) {
    if (p.failed) return;
    p.failed = true;
    p.xb->ReportFatal(why);
    if (&p == active_) RetireActive(/*withdraw=*/false);
    p.conn.reset();
  }

  bool HasOtherPath(const Path* not_this) const {
    for (const auto& [dev, p] : paths_) {
      if (p.get() != not_this && p->usable()) return true;
    }
    return false;
  }

  bool HasReadyStandby() const {
    for (const auto& [dev, p] : paths_) {
      if (p.get() != active_ && p->ready()) return true;
    }
    return false;
  }

  // The first connection: every path whose backend is there, then the
  // active one: a path whose backend serves the volume (the newest epoch),
  // or the best path asked to take over.
  Status FirstConnect(const Deadline& dl) {
    Status last;
    // A backend that is slow to map the ring (a loaded or emulated host)
    // gets twice the time on each further try of the same path.
    std::map<const Path*, int> tries;
    // Set when a primary's path is first seen on its way to InitWait.
    std::optional<Deadline> serving_grace;
    for (;;) {
      const std::vector<Path*> order = Ordered();
      bool primary_on_its_way = false;
      if (order.size() == 1) {
        // One path: its handshake, waiting for the backend as long as it
        // takes (within the deadline).
        Path* p = order.front();
        if (p->conn == nullptr && !p->failed) {
          Status s = ConnectPath(*p, dl);
          if (!s.ok()) return s;
        }
      } else {
        // Several: connect those whose backend waits for us, serving ones
        // first; nudge the others (they may be dead: never wait on them).
        std::vector<Path*> cands = order;
        std::stable_partition(cands.begin(), cands.end(),
                              [](const Path* p) { return p->serving(); });
        for (Path* p : cands) {
          if (p->conn != nullptr || p->failed) continue;
          auto v = ReadView(*p);
          if (!v.ok()) {
            if (v.status().code() == Code::kCorruption) FailPath(*p, v.status());
            last = v.status();
            continue;
          }
          p->role = v->role;
          p->epoch = v->epoch;
          if (v->state != XS::kInitWait || !v->online) {
            Nudge(*p, *v);
            // An earlier guest's ring still closing, say.
            primary_on_its_way = primary_on_its_way || (v->online && v->role == be::kRolePrimary);
            continue;
          }
          const int n = std::min(tries[p]++, 4);
          const Deadline pdl(SystemClock::Instance(),
                             std::min<Nanos>(dl.Remaining(), kCandidateBudget * (1 << n)));
          Status s = ConnectPath(*p, pdl);
          if (!s.ok()) last = s;
        }
      }
      Path* chosen = nullptr;
      for (Path* p : order) {
        if (!p->ready() || !p->serving()) continue;
        if (chosen == nullptr || p->epoch > chosen->epoch) chosen = p;
      }
      // The primary's own path is coming: asking another path to take over
      // would only be refused (the primary is alive), after a round of the
      // majority rule. Wait for it, a little.
      if (chosen == nullptr && primary_on_its_way && !serving_grace) {
        serving_grace.emplace(SystemClock::Instance(), kServingPathGrace);
      }
      const bool wait_for_primary =
          chosen == nullptr && primary_on_its_way && !serving_grace->Expired();
      if (chosen == nullptr && !wait_for_primary) {
        for (Path* p : order) {
          if (!p->ready()) continue;
          ActivationResult r = Activate(*p, /*force=*/true, dl);
          if (r.kind == ActivationResult::Kind::kOk) {
            chosen = p;
            break;
          }
          last = Status::Unavailable("path " + std::to_string(p->dev()) + ": " + r.message);
        }
      }
      if (chosen != nullptr) {
        active_ = chosen;
        features_ = chosen->conn->geometry;
        generation_.fetch_add(1, std::memory_order_acq_rel);
        return Status::Ok();
      }
      bool any_left = false;
      for (Path* p : order) any_left = any_left || !p->failed;
      if (!any_left) return last.ok() ? Status::Unavailable("every path failed") : last;
      if (dl.Expired()) {
        if (!last.ok() && last.code() != Code::kTimeout) return last;
        return Status::Timeout("no path of volume " + volume_.ToString() + " became usable" +
                               (last.ok() ? std::string() : ": " + last.message()));
      }
      if (wait_for_primary) {
        const Deadline wdl(SystemClock::Instance(),
                           std::min(dl.Remaining(), serving_grace->Remaining()));
        VNVRAM_RETURN_IF_ERROR(WaitAny(wdl).status());
      } else {
        VNVRAM_RETURN_IF_ERROR(WaitAny(dl).status());
      }
    }
  }

  // Moves a path without a connection towards its backend's InitWait
  // without waiting (the backend may be dead): the Closing/Closed dance
  // steps, or Initialising for a backend still Connected to an old ring of
  // ours. Its InitWait fires a watch; the path connects then.
  void Nudge(Path& p, const BackendView& v) {
    if (!v.online || p.failed) return;
    XS want = XS::kUnknown;
    if (v.state == XS::kClosing && p.xb->BackendError().empty()) {
      want = XS::kClosed;
    } else if (v.state == XS::kClosed || v.state == XS::kConnected) {
      want = XS::kInitialising;
    }
    if (want == XS::kUnknown || p.xb->state() == want) return;
    if (want == XS::kInitialising && p.xb->state() == XS::kClosing) {
      (void)p.xb->SetState(XS::kClosed);  // the only way out of Closing
    }
    (void)p.xb->SetState(want);
  }

  // Asks the backend of `p` to become the volume's serving primary and
  // waits for its answer (docs/multipath.md "Activation").
  ActivationResult Activate(Path& p, bool force, const Deadline& dl) {
    using K = ActivationResult::Kind;
    uint64_t n = p.activate_sent;
    if (auto a = p.xb->ReadBackendKey(be::kActivated); a.ok() && *a) {
      n = std::max(n, ParseU64(**a).value_or(0));
    }
    ++n;
    Status w = p.xb->WriteFrontendKeys(
        {{fe::kActivateForce, force ? "1" : "0"}, {fe::kActivate, std::to_string(n)}});
    if (!w.ok()) return {K::kError, "cannot ask for activation: " + w.message()};
    p.activate_sent = n;
    bool waiting_reported = false;
    for (;;) {
      auto st = p.xb->BackendState();
      auto online = p.xb->BackendOnline();
      if (!st.ok() || !online.ok() || *st == XS::kUnknown || !*online) {
        return {K::kError, "the backend of path " + std::to_string(p.dev()) + " went away"};
      }
      auto done = p.xb->ReadBackendKey(be::kActivated);
      auto result = p.xb->ReadBackendKey(be::kActivateResult);
      if (done.ok() && *done && ParseU64(**done).value_or(0) >= n) {
        std::string msg;
        if (auto m = p.xb->ReadBackendKey(be::kActivateMessage); m.ok() && *m) {
          msg = Printable(**m, be::kActivateMessageMaxLen);
        }
        const std::string res = result.ok() && *result ? **result : std::string();
        if (res == be::kActivateResultOk) {
          if (auto v = ReadView(p); v.ok()) {
            p.role = v->role;
            p.epoch = v->epoch;
          }
          return {K::kOk, ""};
        }
        if (res == be::kActivateResultNoMajority) return {K::kNoMajority, msg};
        return {K::kError, msg.empty() ? "activation failed (" + res + ")" : msg};
      }
      if (result.ok() && *result && **result == be::kActivateResultWaitingResync &&
          !waiting_reported) {
        waiting_reported = true;
        p.xb->log().Info("the backend waits for its copy's resync before it takes over");
        if (mp_) mp_->SetFailoverState(mp::kFailoverStateWaitingResync);
      }
      if (dl.Expired()) {
        return {K::kTimeout, "the backend of path " + std::to_string(p.dev()) +
                                 " did not answer activate request " + std::to_string(n) +
                                 " in time"};
      }
      auto a = p.xb->WaitForActivity(nullptr, dl);
      if (!a.ok()) return {K::kError, a.status().message()};
    }
  }

  // ---- the wait ----------------------------------------------------------

  // Blocks until the active path's port has an event, a watch of any path
  // (or the multipath directory) fires, or the deadline passes.
  Result<frontend::Activity> WaitAny(const Deadline& dl) {
    frontend::Activity a;
    for (;;) {
      for (auto& [dev, p] : paths_) VNVRAM_RETURN_IF_ERROR(p->xb->DrainWatches(&a.watch));
      if (mp_) {
        VNVRAM_ASSIGN_OR_RETURN(const bool f, mp_->Drain());
        a.watch = a.watch || f;
      }
      if (Connection* c = ActiveConn(); c != nullptr) {
        VNVRAM_ASSIGN_OR_RETURN(const bool ev, active_->xb->TakeEvent(c));
        a.event = a.event || ev;
      }
      if (a.event || a.watch || dl.Expired()) return a;
      std::vector<pollfd> fds;
      for (auto& [dev, p] : paths_) fds.push_back({p->xb->watch_fd(), POLLIN, 0});
      if (mp_) fds.push_back({mp_->watch_fd(), POLLIN, 0});
      if (ActiveConn() != nullptr) fds.push_back({active_->xb->event_fd(), POLLIN, 0});
      const int n = ::poll(fds.data(), fds.size(), dl.RemainingMillisForPoll());
      if (n < 0 && errno != EINTR) return Status::FromErrno(errno, "poll");
      if (n == 0) return a;
    }
  }

  // ---- requests ----------------------------------------------------------

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
    Connection* conn = ActiveConn();
    if (conn == nullptr) return Status::Ok();
    bool any = false;
    const Nanos now = SystemClock::Instance().Now();
    for (auto& [t, p] : pending_) {
      if (p.issued || p.done) continue;
      if (conn->ring->in_flight() >= conn->ring->ring_size()) break;
      auto id = conn->ring->Submit(p.req);
      if (!id.ok()) {
        if (id.status().code() == Code::kResourceExhausted) break;
        PathBroke(id.status());
        return Status::Ok();
      }
      p.issued = true;
      p.issued_at = now;
      ring_ids_[*id] = t;
      any = true;
    }
    if (any) {
      Status k = conn->ring->Kick();
      if (!k.ok()) PathBroke(k);
    }
    return Status::Ok();
  }

  Status QueueAsync(const vnvramif_request& r) {
    Queue(r, /*async=*/true);
    const Deadline dl = NewDeadline();
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

  // Waits until at most `at_most` queued (async) requests are unanswered.
  Status DrainLocked(const Deadline& dl, size_t at_most = 0) {
    VNVRAM_RETURN_IF_ERROR(Usable());
    VNVRAM_RETURN_IF_ERROR(IssueQueued());
    Status s = Pump(dl, [this, at_most] {
      size_t open = 0;
      for (const auto& [t, p] : pending_) {
        if (p.async && !p.done && ++open > at_most) return false;
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
    if (c.status == VNVRAMIF_RSP_EAGAIN && p.req.operation != VNVRAMIF_OP_GET_INFO) {
      // This backend no longer serves the volume: the request goes again on
      // the path whose backend does (persists are idempotent).
      p.issued = false;
      if (!failover_needed_) failover_needed_ = Reason::kNotPrimary;
      return;
    }
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

  // A sticky device error: no path can be trusted any more.
  Status Fail(const Status& why) {
    if (state_ == DeviceState::kError) return error_;
    error_ = why;
    state_ = DeviceState::kError;
    if (active_ != nullptr) {
      active_->xb->ReportFatal(why);
      RetireActive(/*withdraw=*/false);
    }
    FailAllPending(why);
    PublishGroup();
    return error_;
  }

  // The active path's ring broke (a protocol violation): that path is
  // failed; another path takes over, or the device is in error.
  void PathBroke(const Status& why) {
    if (active_ == nullptr) return;
    if (!HasOtherPath(active_)) {
      (void)Fail(why);
      return;
    }
    active_->xb->log().Error("path failed: {}", why.ToString());
    FailPath(*active_, why);
    failover_needed_ = Reason::kPathError;
  }

  // Leaves the active path: its mapping goes to retired_ (stores and
  // in-flight ranges are carried from it), its requests are re-issued on
  // the next active path. `withdraw`: tell a backend that may still be
  // alive to drop our ring (it goes back to InitWait; we reconnect later as
  // a standby).
  void RetireActive(bool withdraw) {
    if (active_ == nullptr) return;
    Path& p = *active_;
    // Initialising before the ring's grants go, as in Connect.
    if (withdraw && !p.failed) (void)p.xb->SetState(XS::kInitialising);
    if (p.conn != nullptr) {
      retired_.push_back(std::move(p.conn->region));
      while (retired_.size() > kMaxRetiredMappings) retired_.pop_front();
      p.conn.reset();
    }
    last_active_ = p.dev();
    active_ = nullptr;
    ring_ids_.clear();
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (it->second.abandoned) {
        it = pending_.erase(it);  // its caller was told it failed
      } else {
        it->second.issued = false;  // re-issued on the next connection
        ++it;
      }
    }
    if (state_ == DeviceState::kConnected) state_ = DeviceState::kReconnecting;
  }

  // Runs the event loop until `done()` holds or the deadline passes.
  // Yields until the active ring has responses (true) or poll_spin is over.
  bool SpinForResponses() {
    Connection* c = ActiveConn();
    if (c == nullptr || options_.poll_spin.count() <= 0 || c->ring->in_flight() == 0) return false;
    const auto end = std::chrono::steady_clock::now() + options_.poll_spin;
    do {
      if (c->ring->ResponsesWaiting()) return true;
      sched_yield();
    } while (std::chrono::steady_clock::now() < end);
    return false;
  }

  Status Pump(const Deadline& dl, const std::function<bool()>& done) {
    for (;;) {
      if (state_ == DeviceState::kError) return error_;
      if (state_ == DeviceState::kClosed) return Status::Unavailable("device closed (detached)");
      if (pending_switch_ != nullptr) {
        FinishSwitch(dl);
        continue;
      }
      if (Connection* c = ActiveConn(); c != nullptr) {
        auto got = c->ring->Poll();
        if (!got.ok()) {
          PathBroke(got.status());
          continue;
        }
        for (const Completion& comp : *got) Complete(comp);
        VNVRAM_RETURN_IF_ERROR(IssueQueued());
      }
      if (RunPlannedFailover()) continue;
      if (done()) return Status::Ok();
      CheckRecoverRetry();
      if (active_ == nullptr && !recover_blocked_ && !dl.Expired()) {
        // No active path (an earlier switch gave up): try again now.
        failover_needed_ = last_reason_;
        continue;
      }
      if (dl.Expired()) {
        return Status::Timeout(active_ != nullptr ? "backend did not answer in time"
                                                  : "backend did not come back in time");
      }
      Deadline wait = dl;
      if (active_ == nullptr && recover_blocked_) {
        // Blocked after a failed failover: wake for the retry even if no
        // xenstore change comes (it may have come before the failure).
        const Nanos now = SystemClock::Instance().Now();
        const Nanos left = recover_retry_at_ > now ? recover_retry_at_ - now : Nanos{0};
        if (left < dl.Remaining()) wait = Deadline(SystemClock::Instance(), left);
      }
      if (active_ != nullptr && HasOtherPath(active_)) {
        // A request unanswered for path_timeout fails the path over.
        std::optional<Nanos> oldest;
        for (const auto& [t, p] : pending_) {
          if (p.issued && !p.done && (!oldest || p.issued_at < *oldest)) oldest = p.issued_at;
        }
        if (oldest) {
          const Nanos limit = *oldest + Nanos(options_.path_timeout);
          const Nanos now = SystemClock::Instance().Now();
          if (now >= limit) {
            active_->xb->log().Warn("a request went unanswered for {} ms: failing over",
                                    options_.path_timeout.count());
            failover_needed_ = Reason::kRingTimeout;
            continue;
          }
          Nanos wake = limit;
          if (StandbyReportsPrimaryDown()) {
            const Nanos probe_at = std::max(*oldest + kHintProbeAfter, next_hint_probe_);
            if (now >= probe_at) {
              next_hint_probe_ = now + kHintProbeAfter;
              if (!ProbeActive()) {
                active_->xb->log().Warn(
                    "a request went unanswered for {} ms, a standby reports the primary "
                    "unreachable and the active path did not answer a probe within {} ms: "
                    "failing over",
                    std::chrono::duration_cast<std::chrono::milliseconds>(now - *oldest).count(),
                    options_.probe_timeout.count());
                failover_needed_ = Reason::kBackendGone;
              }
              continue;
            }
            wake = std::min(wake, probe_at);
          }
          if (wake - now < dl.Remaining()) wait = Deadline(SystemClock::Instance(), wake - now);
        }
      }
      if (SpinForResponses()) continue;
      auto a = WaitAny(wait);
      if (!a.ok()) return a.status();
      if (a->watch) {
        recover_blocked_ = false;
        Service();
      }
    }
  }

  // ---- watching the paths ------------------------------------------------

  // Re-reads every path's backend and acts: the active path's backend
  // leaving Connected or vanishing, standbys coming and going, a standby
  // reporting the primary unreachable (probe the active path), operator
  // requests. Sets failover_needed_ / operator_ rather than failing over
  // here; Pump or the monitor runs the switch.
  void Service() {
    // Every path's view first, so that the active path's handling knows
    // which other paths are still there (a detach removes several).
    std::map<DevId, BackendView> views;
    for (auto& [dev, p] : paths_) {
      if (p->failed) continue;
      auto view = ReadView(*p);
      if (!view.ok()) {
        if (view.status().code() == Code::kCorruption) {
          if (p.get() == active_) {
            PathBroke(view.status());
          } else {
            FailPath(*p, view.status());
          }
        }
        continue;
      }
      const bool gone = view->state == XS::kUnknown || !view->online;
      if (gone != p->gone && p.get() != active_) {
        p->xb->log().Info(
            "{}", gone ? "path removed (backend offline or detached)" : "path present again");
      }
      p->gone = gone;
      if (gone && p.get() != active_) p->conn.reset();
      views.emplace(dev, *view);
    }
    bool suspect = false;
    for (auto& [dev, p] : paths_) {
      auto it = views.find(dev);
      if (p->failed || it == views.end()) continue;
      const BackendView* view = &it->second;
      p->role = view->role;
      p->epoch = view->epoch;
      const bool was_link = p->primary_link;
      p->primary_link = view->primary_link;
      if (p.get() == active_) {
        ActiveChanged(*view);
        continue;
      }
      if (p->conn != nullptr && view->state != XS::kConnected) {
        p->xb->log().Info("standby path's backend left Connected: reconnecting it");
        p->conn.reset();
      }
      if (p->gone) continue;
      if (p->conn == nullptr && view->online && view->state == XS::kInitWait) {
        // Its backend waits for us: an alive backend answers in
        // milliseconds.
        const Deadline sdl(SystemClock::Instance(),
                           std::min<Nanos>(Nanos(options_.timeout), kCandidateBudget));
        if (Status s = ConnectPath(*p, sdl); s.ok()) {
          p->xb->log().Info("standby path ready (backend {} role {})", p->xb->backend(),
                            p->role.empty() ? "local" : p->role);
        }
      } else if (p->conn == nullptr) {
        Nudge(*p, *view);
      }
      if (p->conn != nullptr && was_link && !p->primary_link) suspect = true;
    }
    if (suspect && ActiveConn() != nullptr && !failover_needed_ && !ProbeActive()) {
      active_->xb->log().Warn(
          "a standby reports the primary unreachable and the active path did not answer a "
          "probe within {} ms: failing over",
          options_.probe_timeout.count());
      failover_needed_ = Reason::kBackendGone;
    }
    if (mp_ && !operator_) operator_ = mp_->TakeRequest();
    PublishGroup();
  }

  void ActiveChanged(const BackendView& v) {
    Path& p = *active_;
    if (v.state == XS::kUnknown || !v.online) {
      if (HasOtherPath(&p)) {
        p.xb->log().Warn("active path's backend is gone: failing over");
        RetireActive(/*withdraw=*/false);
        failover_needed_ = Reason::kBackendGone;
        return;
      }
      // Detached: the toolstack set online = 0 (or removed the directory).
      p.xb->log().Info("device detached by the toolstack; closing");
      FailAllPending(Status::Unavailable("device detached"));
      Deadline short_dl(SystemClock::Instance(), Nanos{1'000'000'000});
      (void)p.xb->Close(short_dl, [this] { RetireActive(/*withdraw=*/false); });
      state_ = DeviceState::kClosed;
      detached_ = true;
      return;
    }
    switch (v.state) {
      case XS::kConnected:
        if (p.conn == nullptr) failover_needed_ = Reason::kBackendClosed;
        return;
      case XS::kInitialising:
      case XS::kInitWait:
      case XS::kClosed:
        // The backend restarted (new grants) or reset the device.
        p.xb->log().Warn("backend restarted or reset the device");
        RetireActive(/*withdraw=*/false);
        failover_needed_ = Reason::kBackendClosed;
        return;
      case XS::kClosing: {
        const std::string err = p.xb->BackendError();
        if (!err.empty()) {
          PathBroke(Status::Unavailable("backend closed the device: " + err));
          if (active_ != nullptr) {  // not replaced by Fail()
            RetireActive(false);
          }
          return;
        }
        RetireActive(/*withdraw=*/false);
        failover_needed_ = Reason::kBackendClosed;
        return;
      }
      default:
        PathBroke(Status::Corruption("backend went to state " +
                                     std::string(schema::XenbusStateName(v.state))));
        return;
    }
  }

  // GET_INFO on the active path within probe_timeout; other completions
  // are handled as usual meanwhile. False: no (good) answer.
  bool ProbeActive() {
    Path& p = *active_;
    vnvramif_request r{};
    r.operation = VNVRAMIF_OP_GET_INFO;
    auto id = p.conn->ring->Submit(r);
    if (!id.ok()) return id.status().code() == Code::kResourceExhausted;  // busy: alive
    if (!p.conn->ring->Kick().ok()) return false;
    const Deadline pd(SystemClock::Instance(), options_.probe_timeout);
    for (;;) {
      auto got = p.conn->ring->Poll();
      if (!got.ok()) return false;
      bool answered = false;
      bool good = false;
      for (const Completion& c : *got) {
        if (c.id == *id) {
          answered = true;
          good = c.status == VNVRAMIF_RSP_OKAY;
        } else {
          Complete(c);
        }
      }
      if (answered) return good;
      if (pd.Expired()) return false;
      pollfd fd{p.xb->event_fd(), POLLIN, 0};
      (void)::poll(&fd, 1, pd.RemainingMillisForPoll());
      if (!p.xb->TakeEvent(p.conn.get()).ok()) return false;
    }
  }

  // Runs an operator request or a needed automatic failover, if any; true
  // when it ran one.
  bool RunPlannedFailover() {
    if (state_ == DeviceState::kError || state_ == DeviceState::kClosed) return false;
    if (operator_) {
      Plan plan;
      plan.reason = Reason::kOperator;
      plan.target = operator_->target;
      plan.force = operator_->force;
      plan.request = operator_->number;
      plan.timeout = operator_->timeout;
      operator_.reset();
      failover_needed_.reset();
      (void)RunFailover(plan);
      return true;
    }
    if (failover_needed_) {
      Plan plan;
      plan.reason = *failover_needed_;
      plan.timeout = options_.failover_timeout;
      (void)RunFailover(plan);
      return true;
    }
    return false;
  }

  // The switch (docs/multipath.md "Failover"): leave the active path, ask
  // the best candidate's backend to take over, carry in-flight ranges into
  // its region, prove it with a first persist, re-issue what was pending.
  Status RunFailover(const Plan& plan) {
    failover_needed_.reset();
    last_reason_ = plan.reason;
    if (pending_switch_ != nullptr) {
      // Leaving a path the callers never switched to: withdraw it as if it
      // had been active (its mapping was never theirs).
      Path& p = *std::exchange(pending_switch_, nullptr);
      p.conn.reset();
      if (!p.failed) (void)p.xb->SetState(XS::kInitialising);
      last_active_ = p.dev();
    }
    const Clock& clock = SystemClock::Instance();
    const Nanos t0 = clock.Now();
    const Deadline fdl(clock, plan.timeout);
    const std::optional<DevId> from =
        active_ != nullptr ? std::optional<DevId>(active_->dev()) : last_active_;
    failing_over_ = true;
    if (mp_) mp_->SetFailoverState(mp::kFailoverStateInProgress);
    PublishGroup();
    spdlog::info("volume {}: failover from path {} ({})", volume_.ToString(),
                 from ? std::to_string(*from) : std::string("-"), ReasonValue(plan.reason));
    if (active_ != nullptr) RetireActive(/*withdraw=*/true);

    std::vector<Path*> cands;
    std::string_view fail_result = mp::kFailoverResultNoStandby;
    std::string message;
    bool refused = false;  // a backend answered no (rather than nothing)
    if (plan.target) {
      auto it = paths_.find(*plan.target);
      if (it == paths_.end() || !it->second->usable()) {
        fail_result = mp::kFailoverResultError;
        message = "path " + std::to_string(*plan.target) + " is not a usable path of this volume";
      } else {
        cands.push_back(it->second.get());
      }
    } else {
      for (Path* p : Ordered()) {
        if (p->usable() && (!from || p->dev() != *from)) cands.push_back(p);
      }
      // The old path last: its backend may serve again (a restart).
      if (from) {
        auto it = paths_.find(*from);
        if (it != paths_.end() && it->second->usable()) cands.push_back(it->second.get());
      }
      // Ready standbys before ones still to be connected.
      std::stable_partition(cands.begin(), cands.end(), [](const Path* p) { return p->ready(); });
      if (cands.empty()) message = "no other path of this volume is usable";
    }
    // The first answer a backend gave (a refusal says more than the
    // silence of a dead path tried after it).
    std::optional<std::pair<std::string_view, std::string>> answered;
    for (size_t i = 0; i < cands.size(); ++i) {
      Path& c = *cands[i];
      const Deadline cdl =
          i + 1 < cands.size() ? Deadline(clock, std::min(fdl.Remaining(), kCandidateBudget)) : fdl;
      if (c.conn == nullptr) {
        if (cands.size() > 1) {
          // Only a backend that waits for us is worth the time now; others
          // (perhaps dead) are nudged and connect when they answer.
          auto v = ReadView(c);
          if (!v.ok() || v->state != XS::kInitWait || !v->online) {
            if (v.ok()) Nudge(c, *v);
            if (message.empty()) message = "path " + std::to_string(c.dev()) + ": not ready";
            continue;
          }
        }
        Status s = ConnectPath(c, cdl);
        if (!s.ok()) {
          fail_result =
              s.code() == Code::kTimeout ? mp::kFailoverResultTimeout : mp::kFailoverResultError;
          message = "path " + std::to_string(c.dev()) + ": " + s.message();
          continue;
        }
      }
      ActivationResult r = Activate(c, plan.force, cdl);
      if (r.kind != ActivationResult::Kind::kOk) {
        fail_result = r.kind == ActivationResult::Kind::kNoMajority ? mp::kFailoverResultNoMajority
                      : r.kind == ActivationResult::Kind::kTimeout  ? mp::kFailoverResultTimeout
                                                                    : mp::kFailoverResultError;
        message = "path " + std::to_string(c.dev()) + ": " + r.message;
        if (r.kind != ActivationResult::Kind::kTimeout) {
          refused = true;
          if (!answered) answered.emplace(fail_result, message);
        }
        continue;
      }
      if (in_monitor_) {
        // No call runs, so the caller may be storing into the old mapping
        // right now: the next call makes the switch (FinishSwitch).
        pending_switch_ = &c;
      } else if (Status s = SwitchTo(c, cdl); !s.ok()) {
        fail_result = mp::kFailoverResultError;
        message = "path " + std::to_string(c.dev()) + ": " + s.message();
        RetireActive(/*withdraw=*/true);
        continue;
      }
      const uint64_t us = static_cast<uint64_t>(
          std::chrono::duration_cast<std::chrono::microseconds>(clock.Now() - t0).count());
      ++failovers_;
      failing_over_ = false;
      recover_backoff_ = Nanos{0};
      frontend::FailoverOutcome o;
      o.request = plan.request;
      o.result = mp::kFailoverResultOk;
      o.reason = ReasonValue(plan.reason);
      o.from = from;
      o.to = c.dev();
      o.duration_us = us;
      o.message = "path " + (from ? std::to_string(*from) : std::string("-")) + " -> " +
                  std::to_string(c.dev()) + " in " + std::to_string(us / 1000) + "." +
                  std::to_string(us % 1000 / 100) + " ms";
      spdlog::info("volume {}: failover ({}) {}", volume_.ToString(), o.reason, o.message);
      if (mp_) {
        mp_->Report(o, mp::kFailoverStateDone);
      }
      PublishGroup();
      if (pending_switch_ == nullptr) (void)IssueQueued();
      return Status::Ok();
    }
    if (answered) std::tie(fail_result, message) = *answered;
    // An operator's failover to a path that refused leaves the volume where
    // it was: back to the old path, whose backend still serves.
    bool restored = false;
    if (plan.target && from && *from != *plan.target) {
      auto it = paths_.find(*from);
      if (it != paths_.end() && it->second->usable()) {
        Path& o = *it->second;
        const Deadline rdl(clock, kCandidateBudget);
        if (o.conn != nullptr || ConnectPath(o, rdl).ok()) {
          ActivationResult r = Activate(o, /*force=*/false, rdl);
          if (r.kind == ActivationResult::Kind::kOk) {
            if (in_monitor_) {
              pending_switch_ = &o;
              restored = true;
            } else {
              restored = SwitchTo(o, rdl).ok();
              if (!restored) RetireActive(/*withdraw=*/true);
            }
          }
        }
      }
      if (restored) spdlog::info("volume {}: back on path {}", volume_.ToString(), *from);
    }
    failing_over_ = false;
    // Blocked until something changes in xenstore, or until the retry
    // time: a path that became ready while this failover ran (a restarted
    // backend back in sync) changes nothing more, so a wait for a change
    // alone could wait forever.
    recover_blocked_ = !restored;
    if (recover_blocked_) {
      recover_backoff_ =
          std::clamp<Nanos>(recover_backoff_ * 2, kRecoverRetryMin, kRecoverRetryMax);
      recover_retry_at_ = clock.Now() + recover_backoff_;
    }
    spdlog::warn("volume {}: failover ({}) failed: {}", volume_.ToString(),
                 ReasonValue(plan.reason), message);
    frontend::FailoverOutcome o;
    o.request = plan.request;
    o.result = fail_result;
    o.reason = ReasonValue(plan.reason);
    o.from = from;
    o.duration_us = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(clock.Now() - t0).count());
    o.message = message;
    if (mp_) {
      mp_->Report(o, mp::kFailoverStateFailed);
    }
    PublishGroup();
    Status st =
        Status::Unavailable("failover of volume " + volume_.ToString() + " failed: " + message);
    // A refusal is an answer: the callers waiting learn it now. Otherwise
    // (nothing answered yet: a backend restarting) they wait, up to their
    // deadlines, for a path to come back.
    if (restored) {
      if (pending_switch_ == nullptr) (void)IssueQueued();
    } else if (refused) {
      FailAllPending(st);
    }
    return st;
  }

  // The active path, or the one a failover in the monitor chose that the
  // next call switches to.
  Path* Current() const { return active_ != nullptr ? active_ : pending_switch_; }

  // Inside a call: the switch to the path the monitor's failover chose.
  void FinishSwitch(const Deadline& dl) {
    Path& c = *std::exchange(pending_switch_, nullptr);
    if (!c.ready()) {
      last_active_ = c.dev();
      failover_needed_ = Reason::kBackendGone;
      return;
    }
    if (Status s = SwitchTo(c, dl); !s.ok()) {
      c.xb->log().Warn("the new active path failed its first persist: {}", s.ToString());
      RetireActive(/*withdraw=*/true);
      failover_needed_ = Reason::kBackendGone;
      return;
    }
    PublishGroup();
    (void)IssueQueued();
  }

  // Makes `p` (connected, its backend serving) the active path.
  Status SwitchTo(Path& p, const Deadline& dl) {
    active_ = &p;
    features_ = p.conn->geometry;
    state_ = DeviceState::kReconnecting;
    // Carry the caller's view into the new mapping: every byte of the
    // mapping it stored into (persisted or not yet, in flight or not), so
    // that what it persists next, and the re-issued requests, make its
    // bytes durable. Only the guest writes a volume, so the old mapping
    // holds at least what the new backend has.
    if (!retired_.empty() && retired_.back().bytes.size() == p.conn->region.bytes.size()) {
      std::memcpy(p.conn->region.bytes.data(), retired_.back().bytes.data(),
                  p.conn->region.bytes.size());
    }
    // Copy-mode buffers were granted to the old backend's domain.
    for (auto& [t, q] : pending_) {
      if (q.done || q.pages == nullptr || q.copy_domid == p.xb->backend()) continue;
      const size_t pages = q.pages->refs().size();
      auto fresh = copy_sharer_->Share(p.xb->backend(), pages, q.req.operation == VNVRAMIF_OP_READ);
      if (!fresh.ok()) {
        q.done = true;
        q.status = fresh.status().WithContext("re-granting a copy buffer after a failover");
        continue;
      }
      std::shared_ptr<platform::SharedPages> buf = std::move(fresh).value();
      std::memcpy(buf->data().data(), q.pages->data().data(),
                  std::min(buf->data().size(), q.pages->data().size()));
      for (size_t i = 0; i < pages; ++i) q.req.gref[i] = buf->refs()[i];
      q.pages = std::move(buf);
      q.copy_domid = p.xb->backend();
    }
    generation_.fetch_add(1, std::memory_order_acq_rel);
    // The first persist on the new path proves it serves; it covers one
    // byte the volume holds already.
    vnvramif_request r{};
    r.operation = VNVRAMIF_OP_PERSIST;
    r.offset = 0;
    r.length = 1;
    auto id = p.conn->ring->Submit(r);
    if (!id.ok()) return id.status();
    VNVRAM_RETURN_IF_ERROR(p.conn->ring->Kick());
    for (;;) {
      VNVRAM_ASSIGN_OR_RETURN(std::vector<Completion> got, p.conn->ring->Poll());
      for (const Completion& c : got) {
        if (c.id != *id) continue;
        NoteSeq(c.durable_seq);
        if (c.status != VNVRAMIF_RSP_OKAY) return StatusFromResponse(r, c.status);
        state_ = DeviceState::kConnected;
        return Status::Ok();
      }
      if (dl.Expired()) return Status::Timeout("the new path did not acknowledge a persist");
      VNVRAM_ASSIGN_OR_RETURN(auto a, p.xb->WaitForActivity(p.conn.get(), dl));
      (void)a;
    }
  }

  void PublishGroup() {
    if (!mp_) return;
    std::string_view status = mp::kStatusFailed;
    if (failing_over_) {
      status = mp::kStatusFailingOver;
    } else if (pending_switch_ != nullptr ||
               (active_ != nullptr && state_ == DeviceState::kConnected)) {
      status = HasReadyStandby() ? mp::kStatusOptimal : mp::kStatusDegraded;
    }
    const Path* cur = Current();
    const bool live = state_ != DeviceState::kClosed && cur != nullptr && !failing_over_;
    mp_->Publish(live ? std::optional<DevId>(cur->dev()) : std::nullopt, status,
                 cur != nullptr ? cur->epoch : 0);
    for (auto& [dev, p] : paths_) {
      const std::string_view role = p->failed        ? fe::kPathRoleFailed
                                    : p.get() == cur ? fe::kPathRoleActive
                                                     : fe::kPathRoleStandby;
      if (p->published_role == role) continue;
      if (p->xb->WriteFrontendKeys({{fe::kPathRole, std::string(role)}}).ok()) {
        p->published_role = role;
      }
    }
  }

  // ---- the monitor thread ------------------------------------------------

  void StartMonitor() {
    stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (stop_fd_ < 0) {
      Log().Warn("no monitor thread (eventfd: {}): failovers happen inside calls only",
                 std::strerror(errno));
      return;
    }
    monitor_ = std::thread([this] { MonitorLoop(); });
  }

  void StopMonitor() {
    if (stop_fd_ >= 0) {
      const uint64_t one = 1;
      while (::write(stop_fd_, &one, sizeof one) < 0 && errno == EINTR) {
      }
    }
    if (monitor_.joinable()) monitor_.join();
    if (stop_fd_ >= 0) {
      ::close(stop_fd_);
      stop_fd_ = -1;
    }
  }

  // Serves watch events while no call is running: standby paths, a dead
  // active path, operator failover requests.
  void MonitorLoop() {
    int period = kMonitorPeriodMs;
    for (;;) {
      std::vector<pollfd> fds = {{stop_fd_, POLLIN, 0}};
      {
        std::lock_guard lock(mu_);
        if (stopping_) return;
        for (auto& [dev, p] : paths_) fds.push_back({p->xb->watch_fd(), POLLIN, 0});
        if (mp_) fds.push_back({mp_->watch_fd(), POLLIN, 0});
        if (recover_blocked_) {
          const Nanos left = recover_retry_at_ - SystemClock::Instance().Now();
          period = static_cast<int>(
              std::clamp<int64_t>(left.count() / 1'000'000 + 1, 0, kMonitorPeriodMs));
        } else {
          period = kMonitorPeriodMs;
        }
      }
      const int n = ::poll(fds.data(), fds.size(), period);
      if (n < 0 && errno != EINTR) return;
      if (fds[0].revents != 0) return;
      std::lock_guard lock(mu_);
      if (stopping_) return;
      if (state_ == DeviceState::kClosed || state_ == DeviceState::kError) {
        // Nothing to serve; keep the watch fds quiet.
        bool f = false;
        for (auto& [dev, p] : paths_) (void)p->xb->DrainWatches(&f);
        if (mp_) (void)mp_->Drain();
        continue;
      }
      bool fired = false;
      Status s;
      for (auto& [dev, p] : paths_) {
        if (s.ok()) s = p->xb->DrainWatches(&fired);
      }
      if (mp_ && s.ok()) {
        auto d = mp_->Drain();
        if (d.ok()) fired = fired || *d;
      }
      if (fired) recover_blocked_ = false;
      CheckRecoverRetry();
      in_monitor_ = true;
      Service();
      if (Current() == nullptr && !recover_blocked_ && !failover_needed_) {
        failover_needed_ = last_reason_;
      }
      while (RunPlannedFailover()) {
        if (Current() != nullptr) {
          // Answers to what was re-issued arrive while no call runs: let the
          // next call (or the next event) collect them.
          break;
        }
        if (recover_blocked_) break;
      }
      in_monitor_ = false;
    }
  }

  mutable std::mutex mu_;
  const OpenOptions options_;
  std::unique_ptr<platform::Platform> platform_;
  const Uuid volume_;
  const std::optional<DevId> preferred_;
  std::unique_ptr<XenbusFrontend> first_;  // until LoadPaths takes it
  std::map<DevId, std::unique_ptr<Path>> paths_;
  Path* active_ = nullptr;
  // Chosen by a failover the monitor ran; the next call switches to it.
  Path* pending_switch_ = nullptr;
  bool in_monitor_ = false;  // the monitor thread runs Service/failovers
  std::optional<DevId> last_active_;
  std::unique_ptr<frontend::MultipathState> mp_;
  std::unique_ptr<platform::GrantSharer> copy_sharer_;
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
  // Multipath.
  std::optional<Reason> failover_needed_;
  std::optional<frontend::FailoverRequest> operator_;
  Reason last_reason_ = Reason::kBackendGone;
  bool failing_over_ = false;
  bool recover_blocked_ = false;
  Nanos recover_retry_at_{0};  // while blocked: try again then anyway
  Nanos recover_backoff_{0};   // doubles per failed failover, reset by a good one
  Nanos next_hint_probe_{0};   // kHintProbeAfter: not before then

  // A connected standby whose backend last said the primary is unreachable.
  bool StandbyReportsPrimaryDown() const {
    for (const auto& [dev, p] : paths_) {
      if (p.get() != active_ && p->conn != nullptr && !p->failed && !p->gone && !p->primary_link) {
        return true;
      }
    }
    return false;
  }

  void CheckRecoverRetry() {
    if (recover_blocked_ && SystemClock::Instance().Now() >= recover_retry_at_) {
      recover_blocked_ = false;
    }
  }
  uint64_t failovers_ = 0;
  bool stopping_ = false;
  bool detached_ = false;  // closed because the toolstack detached it
  int stop_fd_ = -1;
  std::thread monitor_;
};

Result<std::unique_ptr<Device>> Device::Open(const OpenOptions& options) {
  if (options.timeout.count() <= 0) return Status::InvalidArgument("timeout must be positive");
  if (options.ring_page_order > VNVRAMIF_MAX_RING_PAGE_ORDER) {
    return Status::InvalidArgument("ring_page_order " + std::to_string(options.ring_page_order) +
                                   " exceeds " + std::to_string(VNVRAMIF_MAX_RING_PAGE_ORDER));
  }
  VNVRAM_ASSIGN_OR_RETURN(auto platform, platform::OpenPlatform(options.platform));
  Uuid volume;
  std::unique_ptr<XenbusFrontend> first;
  if (!options.volume.empty()) {
    VNVRAM_ASSIGN_OR_RETURN(volume, ParseUuid(options.volume, "volume"));
  } else {
    VNVRAM_ASSIGN_OR_RETURN(first, frontend::XenbusFrontend::Open(*platform, options.devid));
    volume = first->volume();
  }
  auto impl = std::make_unique<Impl>(options, std::move(platform), volume, std::move(first));
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
Status Device::drain_to(size_t at_most) {
  return impl_->Drain(at_most);
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
std::vector<PathInfo> Device::paths() const {
  return impl_->Paths();
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
