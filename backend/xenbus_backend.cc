#include "backend/xenbus_backend.h"

#include <algorithm>
#include <chrono>
#include <mutex>
#include <random>
#include <string>
#include <utility>

#include "backend/frontend_transport.h"
#include "vnvram/vnvramif.h"

namespace vnvram::backend {

namespace be = schema::be;
namespace fe = schema::fe;

namespace {

// A random non-zero handshake value (schema key `handshake`): different
// from one publication to the next and from one daemon instance to the
// next, with overwhelming probability.
uint64_t NewHandshake() {
  static std::mutex mu;
  static std::mt19937_64 gen([] {
    std::random_device rd;
    return (uint64_t{rd()} << 32) ^ rd() ^
           static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  }());
  std::lock_guard lock(mu);
  uint64_t v = 0;
  while (v == 0) v = gen();
  return v;
}

std::string Prefix(DomId f, DevId dev) {
  return "dom " + std::to_string(f) + " dev " + std::to_string(dev);
}

// Error node values are one printable line of bounded length.
std::string OneLine(const std::string& s) {
  return Printable(s, be::kErrorMaxLen - 3);
}

}  // namespace

XenbusBackend::XenbusBackend(DeviceEnv& env, DomId frontend, DevId dev)
    : env_(env),
      self_(env.platform.self_domid()),
      frontend_(frontend),
      dev_(dev),
      log_(Prefix(frontend, dev)) {}

XenbusBackend::~XenbusBackend() {
  Disconnect();
  env_.volumes.Release(region_);
}

std::string XenbusBackend::Key(std::string_view key) const {
  return schema::BackendKey(self_, frontend_, dev_, key);
}

std::string XenbusBackend::FeKey(std::string_view key) const {
  return schema::FrontendKey(frontend_, dev_, key);
}

void XenbusBackend::Adopt() {
  // Activation requests made before this instance took the device over are
  // not acted on: the frontend asks again if it still wants one.
  for (const std::string& path : {Key(be::kActivated), FeKey(fe::kActivate)}) {
    if (auto n = env_.xs.Read(platform::kNoTx, path); n.ok()) {
      activate_seen_ = std::max(activate_seen_, ParseU64(*n).value_or(0));
    }
  }
  auto v = env_.xs.Read(platform::kNoTx, Key(be::kState));
  auto s = v.ok() ? schema::ParseXenbusState(*v) : Result<State>(v.status());
  if (s.ok() && (*s == State::kClosing || *s == State::kClosed)) {
    state_ = *s;
    log_.Info("adopted from an earlier instance in state {}", schema::XenbusStateName(state_));
  } else {
    // Anything else is an earlier instance's half-done or live handshake:
    // its grants died with it. Setup() publishes new ones.
    state_ = State::kInitialising;
  }
}

Status XenbusBackend::Probe() {
  if (probed_) return Status::Ok();
  auto frontend = env_.xs.Read(platform::kNoTx, Key(be::kFrontend));
  if (!frontend.ok()) return frontend.status().WithContext("read frontend");
  if (*frontend != schema::FrontendDir(frontend_, dev_)) {
    return Status::InvalidArgument("frontend path does not match this device");
  }
  auto fid_s = env_.xs.Read(platform::kNoTx, Key(be::kFrontendId));
  if (!fid_s.ok()) return fid_s.status().WithContext("read frontend-id");
  auto fid = ParseDomId(*fid_s, be::kFrontendId);
  if (!fid.ok()) return fid.status();
  if (*fid != frontend_) return Status::InvalidArgument("frontend-id does not match this device");
  auto vol_s = env_.xs.Read(platform::kNoTx, Key(be::kVolume));
  if (!vol_s.ok()) return vol_s.status().WithContext("read volume");
  auto vol = ParseUuid(*vol_s, be::kVolume);
  if (!vol.ok()) return vol.status();
  auto size_s = env_.xs.Read(platform::kNoTx, Key(be::kSize));
  if (size_s.ok()) {
    auto size = ParseU64InRange(*size_s, be::kSizeMin, be::kSizeMax, be::kSize);
    if (!size.ok()) return size.status();
    if (*size % be::kSizeMultipleOf != 0) {
      return Status::InvalidArgument("size " + *size_s + " is not a multiple of 4096");
    }
    size_ = *size;
  } else if (size_s.status().code() != Code::kNotFound) {
    return size_s.status().WithContext("read size");
  }
  volume_ = *vol;
  probed_ = true;
  return Status::Ok();
}

Status XenbusBackend::Setup() {
  if (!region_) {
    auto r = env_.volumes.Acquire(volume_, frontend_, size_);
    if (!r.ok()) return r.status();
    region_ = std::move(r).value();
  }
  const VolumeRegion& region = *region_;
  const auto dir_refs = region.dir_refs();
  const uint32_t order = env_.config.max_ring_page_order;
  handshake_ = NewHandshake();
  Status s = platform::RunTransaction(env_.xs, [&](platform::TxId tx) -> Status {
    // Stale keys of an earlier connection or instance go first.
    auto children = env_.xs.Directory(tx, schema::BackendDir(self_, frontend_, dev_));
    if (!children.ok()) return children.status();
    for (const std::string& c : *children) {
      if (c.rfind(be::kPageDirRefPrefix, 0) == 0 || c == be::kError || c == be::kStatisticsDir) {
        VNVRAM_RETURN_IF_ERROR(env_.xs.Remove(tx, Key(c)));
      }
    }
    auto put = [&](std::string_view key, const std::string& value) {
      return env_.xs.Write(tx, Key(key), value);
    };
    VNVRAM_RETURN_IF_ERROR(put(be::kMaxRingPageOrder, std::to_string(order)));
    VNVRAM_RETURN_IF_ERROR(put(be::kRegionSize, std::to_string(region.size())));
    VNVRAM_RETURN_IF_ERROR(put(be::kRegionPages, std::to_string(region.pages())));
    VNVRAM_RETURN_IF_ERROR(put(be::kPageDirRefs, std::to_string(dir_refs.size())));
    for (size_t i = 0; i < dir_refs.size(); ++i) {
      VNVRAM_RETURN_IF_ERROR(
          put(be::PageDirRef(static_cast<uint32_t>(i)), std::to_string(dir_refs[i])));
    }
    VNVRAM_RETURN_IF_ERROR(put(be::kFeaturePersist, "1"));
    VNVRAM_RETURN_IF_ERROR(put(be::kFeatureFlush, "1"));
    VNVRAM_RETURN_IF_ERROR(put(be::kFeatureBarrier, "1"));
    VNVRAM_RETURN_IF_ERROR(put(be::kFeatureCopyMode, env_.config.copy_mode ? "1" : "0"));
    VNVRAM_RETURN_IF_ERROR(put(be::kHandshake, std::to_string(handshake_)));
    VNVRAM_RETURN_IF_ERROR(put(be::kHotplugStatus, std::string(be::kHotplugStatusConnected)));
    return put(be::kState, std::string(schema::XenbusStateValue(State::kInitWait)));
  });
  if (!s.ok()) return s.WithContext("publish features");
  last_stats_.reset();
  last_repl_.reset();
  PublishReplication(/*force=*/true);
  log_.Info("InitWait: volume {} region {} bytes ({} pages, {} directory pages), sequence {}",
            volume_.ToString(), region.size(), region.pages(), dir_refs.size(),
            region.durable_seq());
  state_ = State::kInitWait;
  return Status::Ok();
}

Result<FrontendTransport> XenbusBackend::ReadTransport() {
  return ReadFrontendTransport(
      [this](std::string_view key) { return env_.xs.Read(platform::kNoTx, FeKey(key)); },
      env_.config.max_ring_page_order);
}

Status XenbusBackend::ConnectRing(const FrontendTransport& t) {
  if (!region_) return Status::Internal("connect without a region");
  auto ring = env_.mapper.Map(frontend_, t.ring_refs, /*writable=*/true);
  if (!ring.ok()) return ring.status().WithContext("map ring");
  if ((*ring)->data().size() != t.ring_refs.size() * VNVRAMIF_PAGE_SIZE) {
    return Status::Internal("ring mapping has the wrong size");
  }
  auto evtchn = env_.platform.OpenEventChannels();
  if (!evtchn.ok()) return evtchn.status().WithContext("open event channels");
  auto port = (*evtchn)->BindInterdomain(frontend_, t.port);
  if (!port.ok()) return port.status().WithContext("bind event-channel " + std::to_string(t.port));
  RingWorker::Params p;
  p.ring = std::move(ring).value();
  p.evtchn = std::move(evtchn).value();
  p.port = *port;
  p.region = region_.get();
  p.copy_mapper = env_.config.copy_mode ? &env_.mapper : nullptr;
  p.frontend = frontend_;
  p.on_fence = env_.wake;
  p.log_prefix = log_.prefix();
  p.spin = env_.config.ring_spin;
  auto worker = RingWorker::Start(std::move(p));
  if (!worker.ok()) return worker.status().WithContext("start ring");
  worker_ = std::move(worker).value();
  connected_ = t;
  last_stats_.reset();
  prev_latency_ = LatencyHistogram{};
  VNVRAM_RETURN_IF_ERROR(SwitchState(State::kConnected));
  log_.Info("Connected: ring of {} page(s), event channel {} (ours {})", t.ring_refs.size(), t.port,
            *port);
  return Status::Ok();
}

bool XenbusBackend::InitialisedIsOurs() {
  auto v = env_.xs.Read(platform::kNoTx, FeKey(fe::kBackendHandshake));
  if (!v.ok()) return v.status().code() == Code::kNotFound;  // an older frontend
  auto echo = ParseU64(*v);
  if (echo.ok() && *echo == handshake_) return true;
  log_.Info(
      "the frontend's Initialised answers another publication (backend-handshake {}, ours {}): "
      "waiting for it to start over",
      QuoteForError(*v, 40), handshake_);
  return false;
}

bool XenbusBackend::FrontendMovedOn(const FrontendTransport& t) {
  auto st = env_.xs.Read(platform::kNoTx, FeKey(fe::kState));
  if (!st.ok()) return true;
  auto parsed = schema::ParseXenbusState(*st);
  if (!parsed.ok() || *parsed != State::kInitialised) return true;
  auto now = ReadTransport();
  return !now.ok() || !(*now == t);
}

void XenbusBackend::Disconnect() {
  if (!worker_) return;
  PublishStats(/*force=*/false);
  worker_.reset();  // stops the thread, unbinds, unmaps
  log_.Info("disconnected the ring");
}

Status XenbusBackend::WriteKeys(const std::vector<std::pair<std::string, std::string>>& kv) {
  return platform::RunTransaction(env_.xs, [&](platform::TxId tx) -> Status {
    auto present = env_.xs.Read(tx, Key(be::kFrontend));
    if (!present.ok()) return present.status();
    for (const auto& [k, v] : kv) VNVRAM_RETURN_IF_ERROR(env_.xs.Write(tx, Key(k), v));
    return Status::Ok();
  });
}

Status XenbusBackend::SwitchState(State s) {
  if (state_ == s) return Status::Ok();
  Status w = WriteKeys({{std::string(be::kState), std::string(schema::XenbusStateValue(s))}});
  // The state is ours whatever the write did: a failed write is reported,
  // and the next refresh acts on what we are.
  state_ = s;
  if (!w.ok()) log_.Error("cannot write state {}: {}", schema::XenbusStateName(s), w.ToString());
  return w;
}

Status XenbusBackend::EnsureState(State s) {
  const std::string want(schema::XenbusStateValue(s));
  const bool already = state_ == s;
  std::optional<std::string> overwritten;  // the node's value, when we wrote
  Status w = platform::RunTransaction(env_.xs, [&](platform::TxId tx) -> Status {
    overwritten.reset();
    auto present = env_.xs.Read(tx, Key(be::kFrontend));
    if (!present.ok()) return present.status();
    auto cur = env_.xs.Read(tx, Key(be::kState));
    if (cur.ok() && *cur == want) return Status::Ok();
    if (!cur.ok() && cur.status().code() != Code::kNotFound) return cur.status();
    overwritten = cur.ok() ? *cur : std::string("<absent>");
    return env_.xs.Write(tx, Key(be::kState), want);
  });
  state_ = s;
  if (!w.ok()) {
    log_.Error("cannot write state {}: {}", schema::XenbusStateName(s), w.ToString());
  } else if (overwritten && already) {
    log_.Info("{}: the state node said '{}' (not ours): written again", schema::XenbusStateName(s),
              Printable(*overwritten));
  }
  return w;
}

void XenbusBackend::Fatal(const Status& why) {
  Disconnect();
  log_.Error("fatal device error: {}", why.ToString());
  std::vector<std::pair<std::string, std::string>> kv = {
      {std::string(be::kError), OneLine(why.ToString())}};
  if (state_ == State::kInitialising || state_ == State::kClosed) {
    kv.emplace_back(std::string(be::kHotplugStatus), std::string(be::kHotplugStatusError));
  }
  // Closed may only go back to InitWait: a failure to set up again leaves
  // the device Closed with the error recorded.
  const State target = state_ == State::kClosed ? State::kClosed : State::kClosing;
  kv.emplace_back(std::string(be::kState), std::string(schema::XenbusStateValue(target)));
  Status s = WriteKeys(kv);
  if (!s.ok()) log_.Error("cannot record the error: {}", s.ToString());
  state_ = target;
}

Result<XenbusBackend::State> XenbusBackend::ReadFrontendState() {
  auto v = env_.xs.Read(platform::kNoTx, FeKey(fe::kState));
  if (!v.ok()) {
    if (v.status().code() == Code::kNotFound) return State::kUnknown;
    return v.status();
  }
  return schema::ParseXenbusState(*v);
}

void XenbusBackend::Refresh() {
  // online: the toolstack's switch; absent counts as 0, as blkback reads it.
  bool online = false;
  auto online_s = env_.xs.Read(platform::kNoTx, Key(be::kOnline));
  if (online_s.ok()) {
    auto o = ParseBool01(*online_s, be::kOnline);
    if (!o.ok()) {
      if (state_ != State::kClosing && state_ != State::kClosed) Fatal(o.status());
      return;
    }
    online = *o;
  } else if (online_s.status().code() != Code::kNotFound) {
    log_.Warn("cannot read online: {}", online_s.status().ToString());
    return;
  }
  if (!online) {
    // Toolstack detach (online = 0, usually with state = Closing written by
    // the tool): release the ring and report Closed so it can remove the
    // directories. The region stays until the directory goes. The tool may
    // write Closing over a backend that is already Closed (or set online = 0
    // on one), and then waits for Closed: compare with the node, not with
    // our own idea of the state, and write Closed again when it differs.
    // Idempotent: once the node says Closed, nothing is written.
    Disconnect();
    if (state_ != State::kClosed) {
      // Connected goes through Closing (the tool usually wrote it already).
      if (state_ == State::kConnected) (void)SwitchState(State::kClosing);
      log_.Info("Closed (online = 0)");
    }
    (void)EnsureState(State::kClosed);
    return;
  }
  if (state_ == State::kInitialising) {
    if (Status s = Probe(); !s.ok()) return Fatal(s);
    if (Status s = Setup(); !s.ok()) return Fatal(s);
  }
  if (Status s = Probe(); !s.ok()) {
    if (state_ != State::kClosing && state_ != State::kClosed) Fatal(s);
    return;
  }
  auto fe_state = ReadFrontendState();
  if (!fe_state.ok()) {
    if (fe_state.status().code() == Code::kInvalidArgument) {
      if (state_ != State::kClosing && state_ != State::kClosed) {
        Fatal(fe_state.status().WithContext("frontend state"));
      }
    } else {
      log_.Warn("cannot read the frontend state: {}", fe_state.status().ToString());
    }
    return;
  }
  FrontendChanged(*fe_state);
  CheckWorker();
  if (state_ == State::kInitWait || state_ == State::kConnected) CheckActivateRequest();
}

void XenbusBackend::CheckActivateRequest() {
  auto v = env_.xs.Read(platform::kNoTx, FeKey(fe::kActivate));
  if (!v.ok()) return;
  auto n = ParseU64InRange(*v, fe::kActivateMin, fe::kActivateMax, fe::kActivate);
  if (!n.ok()) {
    log_.Warn("ignoring the frontend's activate request: {}", n.status().message());
    return;
  }
  if (*n <= activate_seen_) return;
  activate_seen_ = *n;
  bool force = false;
  if (auto f = env_.xs.Read(platform::kNoTx, FeKey(fe::kActivateForce)); f.ok()) {
    auto b = ParseBool01(*f, fe::kActivateForce);
    if (!b.ok()) {
      WriteActivation(*n, {ActivationOutcome::Result::kFailed, b.status().message()});
      return;
    }
    force = *b;
  }
  log_.Info("activate request {}{}", *n, force ? " (force)" : "");
  std::weak_ptr<ActivationBox> box = activation_;
  const uint64_t request = *n;
  auto done = [box, request, wake = env_.wake](const ActivationOutcome& o) {
    auto b = box.lock();
    if (!b) return;
    {
      std::lock_guard lock(b->mu);
      if (!b->pending || b->pending->first <= request) b->pending.emplace(request, o);
    }
    wake();
  };
  if (!env_.activate || !env_.activate(volume_, force, done)) {
    // A local volume: its only backend is its primary.
    WriteActivation(request, {ActivationOutcome::Result::kOk, ""});
  }
}

void XenbusBackend::CheckActivation() {
  std::optional<std::pair<uint64_t, ActivationOutcome>> got;
  {
    std::lock_guard lock(activation_->mu);
    got.swap(activation_->pending);
  }
  if (got) WriteActivation(got->first, got->second);
}

void XenbusBackend::WriteActivation(uint64_t request, const ActivationOutcome& o) {
  using R = ActivationOutcome::Result;
  const std::string_view result = o.result == R::kOk              ? be::kActivateResultOk
                                  : o.result == R::kWaitingResync ? be::kActivateResultWaitingResync
                                  : o.result == R::kNoMajority    ? be::kActivateResultNoMajority
                                                                  : be::kActivateResultFailed;
  if (o.result == R::kOk) {
    log_.Info("activate request {}: ok", request);
  } else {
    log_.Warn("activate request {}: {}: {}", request, result, o.message);
  }
  // The role first, so that whoever sees `activated` sees the new role too.
  PublishReplication(/*force=*/false);
  std::vector<std::pair<std::string, std::string>> kv = {
      {std::string(be::kActivateResult), std::string(result)},
      {std::string(be::kActivateMessage), Printable(o.message, be::kActivateMessageMaxLen - 3)}};
  if (o.final()) kv.emplace_back(std::string(be::kActivated), std::to_string(request));
  if (Status s = WriteKeys(kv); !s.ok()) {
    log_.Error("cannot report activate request {}: {}", request, s.ToString());
  }
}

void XenbusBackend::PublishReplication(bool force) {
  if (!region_) return;
  const std::optional<SinkReplication> repl = region_->sink().Replication();
  using S = SinkReplication::Summary;
  std::vector<std::pair<std::string, std::string>> kv;
  if (repl) {
    using R = SinkReplication::Role;
    kv.emplace_back(be::kRole, repl->role == R::kPrimary  ? be::kRolePrimary
                               : repl->role == R::kFenced ? be::kRoleFenced
                                                          : be::kRoleReplica);
    kv.emplace_back(be::kEpoch, std::to_string(repl->epoch));
    kv.emplace_back(be::kPrimaryLink,
                    repl->primary_link ? be::kPrimaryLinkUp : be::kPrimaryLinkDown);
  }
  const S summary = repl ? repl->summary : S::kStandalone;
  kv.emplace_back(be::kReplicationState, summary == S::kInSync     ? be::kReplicationStateInSync
                                         : summary == S::kDegraded ? be::kReplicationStateDegraded
                                         : summary == S::kSyncing
                                             ? be::kReplicationStateSyncing
                                             : be::kReplicationStateStandalone);
  if (!force && last_repl_ && *last_repl_ == kv) return;
  if (Status s = WriteKeys(kv); !s.ok()) {
    log_.Warn("cannot publish the replication state: {}", s.ToString());
    return;
  }
  last_repl_ = std::move(kv);
}

void XenbusBackend::FrontendChanged(State fe) {
  log_.Debug("frontend {} (backend {})", schema::XenbusStateName(fe),
             schema::XenbusStateName(state_));
  if (fe != State::kInitialising) setup_blocked_ = false;
  switch (fe) {
    case State::kInitialising:
      // The frontend is (re)starting: a fresh attach (we are InitWait: wait),
      // a guest that crashed or reset while we were Connected (its ring is
      // gone: drop ours, keep the region, offer it again), or a re-attach
      // after a completed Closing/Closed dance (publish again).
      if (state_ == State::kConnected) {
        Disconnect();
        if (Status s = SwitchState(State::kInitWait); s.ok()) {
          log_.Info("frontend re-initialised: back to InitWait");
        }
      } else if (state_ == State::kClosed && !setup_blocked_) {
        // One attempt per frontend restart: our own error write must not
        // trigger another (the frontend has to move on first).
        if (Status s = Setup(); !s.ok()) {
          setup_blocked_ = true;
          Fatal(s);
        }
      }
      break;

    case State::kInitialised: {
      // Watches coalesce, so we may see Initialised more than once. Connect
      // only from InitWait; while Connected, new transport keys mean the
      // frontend re-initialised without passing Initialising: reconnect.
      if (state_ != State::kInitWait && state_ != State::kConnected) break;
      // A frontend that mapped an earlier publication's grants (an earlier
      // instance of ours died during its handshake) must not be connected:
      // its stores would go to pages nobody serves. It sees our handshake
      // and starts over.
      if (!InitialisedIsOurs()) break;
      auto t = ReadTransport();
      if (!t.ok()) return Fatal(t.status().WithContext("frontend transport keys"));
      if (state_ == State::kConnected) {
        if (*t == connected_) break;
        log_.Info("frontend published new transport keys: reconnecting");
        Disconnect();
        (void)SwitchState(State::kInitWait);
      }
      if (Status s = ConnectRing(*t); !s.ok()) {
        if (FrontendMovedOn(*t)) {
          // It gave up on this handshake (its deadline) and revoked the
          // grants while we mapped them: not hostile; wait for the next.
          log_.Info("the frontend withdrew its ring while we connected ({}): waiting for it",
                    s.ToString());
          return;
        }
        return Fatal(s);
      }
      break;
    }

    case State::kConnected:
      // Normal after our Connected. Seen while we are InitWait it is a
      // frontend still attached to an earlier instance of ours (or an
      // earlier connection): it will re-initialise; nothing to map until it
      // publishes new keys.
      break;

    case State::kClosing:
      // Unplug, or the frontend hit its own fatal error: stop using its
      // ring before it frees it, then answer with Closing.
      Disconnect();
      if (state_ != State::kClosed) (void)SwitchState(State::kClosing);
      break;

    case State::kClosed:
    case State::kUnknown:
      // The frontend let go (or its directory vanished under us: a
      // destroyed guest): release its resources and report Closed.
      Disconnect();
      if (state_ != State::kClosed) {
        log_.Info("Closed (frontend {})", schema::XenbusStateName(fe));
      }
      // Against the node: the toolstack may have written Closing over it.
      (void)EnsureState(State::kClosed);
      break;

    default:
      // Reconfiguring/Reconfigured are not part of this protocol.
      if (state_ != State::kClosing && state_ != State::kClosed) {
        Fatal(Status::InvalidArgument("frontend state " + std::string(schema::XenbusStateName(fe)) +
                                      " is not supported"));
      }
      break;
  }
}

void XenbusBackend::CheckWorker() {
  if (!worker_ || !worker_->fenced()) return;
  Status why = worker_->fence_status();
  PublishStats(/*force=*/true);
  Fatal(Status(Code::kCorruption, "ring fenced: " + why.message()));
}

void XenbusBackend::PublishStats(bool force) {
  if (!worker_ || !region_) return;
  const RingStats st = worker_->Stats();
  const uint64_t errors = st.rejected + st.failed;
  // Latency over the interval since the last publication: the difference
  // of the cumulative histograms. With no samples in the interval the
  // previous figures stay.
  const LatencyHistogram& cur = st.persist_latency;
  LatencyHistogram interval;
  for (size_t i = 0; i < LatencyHistogram::kBuckets; ++i) {
    interval.buckets[i] = cur.buckets[i] - prev_latency_.buckets[i];
    if (interval.buckets[i] != 0) {
      // Upper bound of the highest bucket with samples, as the max unless
      // the cumulative max moved in this interval (then it is exact).
      interval.max_ns = i + 1 < LatencyHistogram::kBuckets ? (uint64_t{1} << i) * 1000 : 0;
    }
  }
  interval.count = cur.count - prev_latency_.count;
  if (cur.max_ns != prev_latency_.max_ns || interval.max_ns == 0 || interval.max_ns > cur.max_ns) {
    interval.max_ns = cur.max_ns;
  }
  if (interval.count > 0) {
    latency_p50_ns_ = interval.QuantileUpperBoundMicros(0.5) * 1000;
    latency_p99_ns_ = interval.QuantileUpperBoundMicros(0.99) * 1000;
    latency_max_ns_ = interval.max_ns;
  }
  std::vector<std::pair<std::string, std::string>> kv = {
      {std::string(be::kStatRequests), std::to_string(st.total_requests())},
      {std::string(be::kStatBytes),
       std::to_string(st.bytes_persisted + st.bytes_written + st.bytes_read)},
      {std::string(be::kStatErrors), std::to_string(errors)},
      {std::string(be::kStatPersistLatencyP50Ns), std::to_string(latency_p50_ns_)},
      {std::string(be::kStatPersistLatencyP99Ns), std::to_string(latency_p99_ns_)},
      {std::string(be::kStatPersistLatencyMaxNs), std::to_string(latency_max_ns_)},
      {std::string(be::kStatDurableSequence), std::to_string(region_->durable_seq())},
  };
  PublishReplication(force);
  if (!force && last_stats_ && *last_stats_ == kv) return;
  Status s = WriteKeys(kv);
  if (!s.ok()) {
    log_.Warn("cannot publish statistics: {}", s.ToString());
    return;
  }
  prev_latency_ = cur;
  last_stats_ = std::move(kv);
}

void XenbusBackend::Remove() {
  Disconnect();
  env_.volumes.Release(region_);
  log_.Info("device removed");
}

}  // namespace vnvram::backend
