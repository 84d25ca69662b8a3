#include "backend/replication/engine.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <random>
#include <set>
#include <zmq.hpp>

#include "backend/replication/zap_handler.h"
#include "common/log.h"

namespace vnvram::replication {

std::string_view ReplicaLinkStateName(ReplicaLinkState s) {
  switch (s) {
    case ReplicaLinkState::kInSync: return "in-sync";
    case ReplicaLinkState::kSyncing: return "syncing";
    case ReplicaLinkState::kOutdated: return "outdated";
    case ReplicaLinkState::kDown: return "down";
  }
  return "down";
}

std::string_view PromoteResultName(PromoteResult r) {
  switch (r) {
    case PromoteResult::kOk: return "ok";
    case PromoteResult::kNoMajority: return "no-majority";
    case PromoteResult::kSuperseded: return "superseded";
    case PromoteResult::kNotReplica: return "not-replica";
    case PromoteResult::kError: return "error";
  }
  return "error";
}

namespace {

using std::chrono::milliseconds;

// Frames ZeroMQ may queue per link; past it a send fails (EAGAIN) and the
// replica is marked outdated (REPLICATE) or the resync waits (chunks).
constexpr int kSendHighWaterMark = 10000;
constexpr size_t kChunksPerRound = 16;
// The routing id of a host's data DEALER is its host id with this suffix
// (host ids have no '/'): everything the host starts goes out on it, and
// answers go back to its control DEALER, whose routing id is the host id.
constexpr std::string_view kDataSuffix = "/data";
// A peer that sends this many refused frames in a row loses its session.
constexpr uint32_t kMaxBadFrames = 16;
// The largest ZeroMQ message any socket of the engine takes (ZMQ_MAXMSGSIZE):
// libzmq allocates a message whole before the decoder sees it, so without a
// bound one peer could make it allocate gigabytes. A larger message ends its
// connection; up to this size an oversize frame is read and answered INVALID
// (oversize), which tells a misconfigured peer why.
constexpr int64_t kMaxMessageSize = int64_t{4} << 20;
static_assert(kMaxMessageSize >= static_cast<int64_t>(wire::kMaxFrameSize));
// How long an activation waits for this host's copy to be resynchronised.
constexpr Nanos kMaxActivationWait = std::chrono::minutes(10);

uint64_t RandomIncarnation() {
  std::random_device rd;
  uint64_t v = (uint64_t{rd()} << 32) ^ rd();
  return v == 0 ? 1 : v;
}

zmq::message_t ToMessage(const Bytes& b) {
  return zmq::message_t(b.data(), b.size());
}

std::span<const std::byte> AsBytes(const zmq::message_t& m) {
  return {static_cast<const std::byte*>(m.data()), m.size()};
}

// One peer's request stream: this host's data DEALER to it (routing id
// "<host>/data"), on which every frame this host starts goes out, in order:
// HELLO, HEARTBEAT, EPOCH_PROPOSE, RESYNC_REQUEST from the I/O thread,
// REPLICATE from the persisting threads, RESYNC_CHUNK and RESYNC_DONE from
// the I/O thread, the last three under their volume's send lock
// (VolumeReplica). It never receives: the peer answers to the control
// DEALER. Thread-safe: the socket is used under mu_ only (which also orders
// its memory); mu_ is the innermost lock.
class DataLink final : public FrameLink {
 public:
  DataLink(std::string peer, const Clock& clock) : peer_(std::move(peer)), clock_(clock) {}

  bool Send(std::span<const std::byte> frame) override {
    std::lock_guard lock(mu_);
    if (!socket_) return false;
    try {
      if (!socket_->send(zmq::message_t(frame.data(), frame.size()), zmq::send_flags::dontwait)) {
        return false;  // not connected (IMMEDIATE) or high-water mark
      }
    } catch (const zmq::error_t& e) {
      spdlog::warn("replication: send to {}: {}", peer_, e.what());
      return false;
    }
    last_sent_ = clock_.Now();
    return true;
  }
  // Without a copy: ZeroMQ's I/O thread writes from the shared frame, which
  // the message keeps alive until then.
  bool Send(const std::shared_ptr<const Bytes>& frame) override {
    auto* keep = new std::shared_ptr<const Bytes>(frame);
    // ZeroMQ never writes to a message's data: the cast only fits its API.
    zmq::message_t msg(
        const_cast<std::byte*>((*keep)->data()), (*keep)->size(),
        [](void* /*data*/, void* hint) { delete static_cast<std::shared_ptr<const Bytes>*>(hint); },
        keep);
    std::lock_guard lock(mu_);
    if (!socket_) return false;
    try {
      if (!socket_->send(msg, zmq::send_flags::dontwait)) return false;
    } catch (const zmq::error_t& e) {
      spdlog::warn("replication: send to {}: {}", peer_, e.what());
      return false;
    }
    last_sent_ = clock_.Now();
    return true;
  }
  // Replaces the socket (nullptr closes it); the I/O thread only.
  void Reset(std::unique_ptr<zmq::socket_t> socket) {
    std::lock_guard lock(mu_);
    socket_ = std::move(socket);
  }
  Nanos last_sent() const {
    std::lock_guard lock(mu_);
    return last_sent_;
  }

 private:
  const std::string peer_;
  const Clock& clock_;
  mutable std::mutex mu_;
  std::unique_ptr<zmq::socket_t> socket_;  // guarded by mu_
  Nanos last_sent_{0};                     // guarded by mu_
};

}  // namespace

// ---------------------------------------------------------------------------
// The I/O thread: every socket but the data DEALERs' sending side, every
// session, every timer.
class Engine::IoThread {
 public:
  IoThread(EngineOptions& options, std::map<std::string, std::shared_ptr<VolumeReplica>>& volumes)
      : opt_(options),
        volumes_(volumes),
        clock_(SystemClock::Instance()),
        incarnation_(RandomIncarnation()),
        limits_{options.cluster.settings.max_data} {}

  ~IoThread() { Stop(); }

  vnvram::Status Open(std::string* bound);
  void Start() {
    thread_ = std::thread([this] { Run(); });
  }
  void Stop();
  void Wake() {
    const uint64_t one = 1;
    while (::write(wake_fd_, &one, sizeof(one)) < 0 && errno == EINTR) {
    }
  }
  void Post(std::function<void()> fn) {
    {
      std::lock_guard lock(cmd_mu_);
      commands_.push_back(std::move(fn));
    }
    Wake();
  }
  EngineStatus Snapshot() const {
    std::lock_guard lock(status_mu_);
    return status_;
  }
  // `takeover`: proposals carry kFlagTakeover (a voter that is or reaches
  // a live primary refuses).
  void StartElection(const std::string& vol, bool force, uint64_t request, bool takeover = false);
  void StartActivation(const std::string& vol, bool force, ActivateCallback done,
                       bool lease_waited = false);

 private:
  struct Peer {
    std::string id;
    std::string endpoint;
    std::optional<std::string> public_key;
    // The control DEALER (routing id = this host's id): receives the peer's
    // answers; nothing is sent on it.
    std::unique_ptr<zmq::socket_t> dealer;
    std::unique_ptr<zmq::socket_t> monitor;  // its link events
    // The data DEALER: every request to the peer (DataLink), shared with
    // the persisting threads through the volumes' fan-out.
    std::shared_ptr<DataLink> data;
    std::unique_ptr<zmq::socket_t> data_monitor;  // its link events
    // ZMQ_FD of dealer, monitor and data_monitor (-1: none).
    int dealer_fd = -1;
    int monitor_fd = -1;
    int data_monitor_fd = -1;
    bool refused = false;  // the CurveZMQ handshake failed
    Nanos refused_at{0};
    bool out_session = false;  // HELLO_ACK received on our DEALER
    Nanos hello_sent{-1};
    bool in_session = false;  // HELLO received on our ROUTER
    uint64_t in_incarnation = 0;
    Nanos last_seen{-1};
    Nanos lost_at{-1};  // one of our DEALERs' connections dropped (LoseSession)
    uint64_t last_seen_wall_ms = 0;
    uint64_t heartbeat_counter = 0;
    bool up = false;
    uint32_t bad_frames = 0;
  };
  // The primary's view of one replica of one volume.
  struct Track {
    ReplicaLinkState state = ReplicaLinkState::kDown;
    uint64_t acked = 0;
    std::optional<uint64_t> since;  // its position when known (dirty resync)
    // Resync in progress.
    std::vector<uint32_t> chunks;
    size_t next_chunk = 0;
    bool done_sent = false;
    uint64_t done_seq = 0;
    // In-sync and syncing replicas are also in the volume's fan-out
    // (VolumeReplica::SetFanOut), which keeps their flow control (bytes
    // unacknowledged, requested acks outstanding) under the volume's mutex.
    // Backoff for a resync that keeps failing soon after it starts.
    Nanos resync_started{0};
    Nanos resync_after{0};
    Nanos backoff{0};
  };
  // A voter's copy sent to a candidate (adoption).
  struct SourceResync {
    std::string target;
    uint64_t epoch = 0;
    uint64_t seq = 0;
    uint32_t chunk_count = 0;
    uint32_t next = 0;
  };
  struct Election {
    uint64_t epoch = 0;
    bool force = false;
    bool takeover = false;
    // A takeover refused because some voter still hears the old primary is
    // tried again until then: voters learn of a dead primary within the
    // peer expiry.
    Nanos takeover_until{0};
    uint64_t request = 0;
    Nanos deadline{0};
    bool self_votes = false;
    std::set<std::string> asked;
    std::map<std::string, std::pair<uint64_t, uint64_t>> accepts;
    bool adopting = false;
    std::string source;
    bool confirming = false;
    std::vector<ActivateCallback> waiters;  // activations riding on it
  };
  // An activation waiting for this host's copy to finish its resync.
  struct DeferredActivation {
    bool force = false;
    ActivateCallback done;
    Nanos since{0};
    // Forced while the followed primary still looks alive from here: wait
    // until then for its session to expire (a destroyed domain sends no
    // FIN), and refuse if it is still reachable.
    Nanos lease_until{0};
  };
  struct VolumeState {
    std::shared_ptr<VolumeReplica> replica;
    std::map<std::string, Track> tracks;  // by host, primary only
    std::optional<Election> election;
    std::vector<SourceResync> sources;
    bool startup_proposal = false;
    Nanos startup_at{0};  // when the start-up proposal may go (majority reachable + settle)
    // The last takeover this host refused as the live primary: (candidate,
    // epoch). See OnAck.
    std::pair<std::string, uint64_t> refused_candidacy;
    uint64_t promote_completed = 0;
    PromoteResult promote_result = PromoteResult::kOk;
    std::string primary_host;  // who this host follows (itself as primary)
    std::optional<DeferredActivation> deferred;
    // A takeover to propose again at `at` (see Election::takeover_until).
    struct TakeoverRetry {
      Nanos at{0};
      Nanos until{0};
      std::vector<ActivateCallback> waiters;
    };
    std::optional<TakeoverRetry> retry;
  };

  void Run();
  void RunCommands();
  // Read until EAGAIN (true) or a budget of frames (false: more to read).
  bool HandleRouter();
  bool HandleDealer(Peer& p);
  void HandleMonitor(Peer& p, zmq::socket_t& monitor);
  vnvram::Status OpenDealer(Peer& p);
  void OnRouterFrame(const std::string& from, zmq::message_t& payload);
  void OnDealerFrame(Peer& p, const Message& m);
  bool SendTo(Peer& p, const Message& m);
  bool SendFrameTo(Peer& p, const Bytes& frame);
  void Reply(const std::string& to, const Message& m);
  void ReplyInvalid(const std::string& to, wire::InvalidReason why, std::string text);
  void SendHello(Peer& p);
  void Seen(Peer& p);
  // The peer runs a new process: its copies need a full resync. Its
  // DEALER session is re-opened unless `session_is_new` (HELLO_ACK of the
  // new process).
  void PeerRestarted(Peer& p, bool session_is_new = false);
  void LoseSession(Peer& p, std::string_view why);
  void Tick();
  // Acts on what the persisting threads left (FanOutNews).
  void FanOutNews();
  void ClearTracks(VolumeState& vs) {
    vs.tracks.clear();
    vs.replica->ClearFanOut();
  }
  void DriveResyncs();
  void StartResync(VolumeState& vs, const std::string& host, Track& t);
  void MarkOutdated(VolumeState& vs, const std::string& host, Track& t, std::string_view why);
  void RecomputeDurable(VolumeState& vs);
  void UpdateServing(VolumeState& vs);
  void CheckElection(const std::string& key, VolumeState& vs, bool at_deadline = false);
  void FinishElection(VolumeState& vs, PromoteResult r, std::string message = "");
  // True while this host's copy is behind a reachable primary that is
  // bringing it up to date (activation waits for that).
  bool CatchingUp(const VolumeState& vs, const VolumeView& v) const;
  void Follow(VolumeState& vs, const std::string& host);
  void BecomePrimary(const std::string& key, VolumeState& vs);
  void OnAck(Peer& p, const Ack& a);
  void PublishStatus(bool notify = true);
  // A primary this host may not take the volume from by force: heard from
  // within peer-expiry, and not silent since its connection dropped.
  static bool PrimaryAlive(const Peer* p) {
    return p != nullptr && p->up && (p->out_session || p->last_seen > p->lost_at);
  }
  Peer* FindPeer(std::string_view id) {
    auto it = peers_.find(std::string(id));
    return it == peers_.end() ? nullptr : &it->second;
  }
  VolumeState* FindVolume(const Uuid& u) {
    auto it = vstate_.find(u.ToString());
    return it == vstate_.end() ? nullptr : &it->second;
  }
  size_t Required(const VolumeState& vs) const {
    return vs.replica->View().forced ? 1 : vs.replica->entry().majority();
  }

  EngineOptions& opt_;
  std::map<std::string, std::shared_ptr<VolumeReplica>>& volumes_;
  const Clock& clock_;
  const uint64_t incarnation_;
  const Limits limits_;
  zmq::context_t ctx_;
  std::unique_ptr<ZapHandler> zap_;
  std::unique_ptr<zmq::socket_t> router_;
  int router_fd_ = -1;   // its ZMQ_FD
  bool reread_ = false;  // read every socket on the next round (Run)
  std::map<std::string, Peer> peers_;
  std::map<std::string, VolumeState> vstate_;
  int wake_fd_ = -1;
  uint64_t monitors_ = 0;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  bool dirty_ = true;
  Nanos last_snapshot_{0};

  std::mutex cmd_mu_;
  std::deque<std::function<void()>> commands_;

  mutable std::mutex status_mu_;
  EngineStatus status_;
  uint64_t frames_in_ = 0;
  uint64_t frames_refused_ = 0;
};

vnvram::Status Engine::IoThread::Open(std::string* bound) {
  const ClusterConfig& c = opt_.cluster;
  const HostEntry* self = c.FindHost(opt_.host_id);
  if (self == nullptr) {
    return vnvram::Status::InvalidArgument("host id " + QuoteForError(opt_.host_id) +
                                           " is not listed in the cluster file");
  }
  if (c.curve_enabled() && !opt_.keys) {
    return vnvram::Status::InvalidArgument(
        "the cluster file lists CurveZMQ keys: give this host's key file (--key-file)");
  }
  if (c.curve_enabled() && opt_.keys->public_z85 != *self->public_key) {
    return vnvram::Status::InvalidArgument(
        "the key file's public key " + QuoteForError(opt_.keys->public_z85) +
        " is not the one the cluster file lists for host " + opt_.host_id);
  }
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) return vnvram::Status::FromErrno(errno, "eventfd");
  try {
    if (c.curve_enabled()) {
      std::map<std::string, std::string> allowed;
      for (const HostEntry& h : c.hosts) allowed.emplace(*h.public_key, h.id);
      auto zap = ZapHandler::Start(ctx_, allowed);
      if (!zap.ok()) return zap.status();
      zap_ = std::move(zap).value();
    }
    router_ = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::router);
    router_->set(zmq::sockopt::router_mandatory, 1);
    router_->set(zmq::sockopt::router_handover, 1);
    router_->set(zmq::sockopt::linger, 0);
    router_->set(zmq::sockopt::sndhwm, kSendHighWaterMark);
    router_->set(zmq::sockopt::rcvhwm, kSendHighWaterMark);
    router_->set(zmq::sockopt::maxmsgsize, kMaxMessageSize);
    router_->set(zmq::sockopt::heartbeat_ivl, static_cast<int>(c.settings.heartbeat_interval_ms));
    router_->set(zmq::sockopt::heartbeat_timeout, static_cast<int>(c.settings.peer_expiry_ms));
    if (c.curve_enabled()) VNVRAM_RETURN_IF_ERROR(ConfigureCurveServer(*router_, *opt_.keys));
    const std::string listen = opt_.listen.value_or(self->endpoint);
    try {
      router_->bind(listen);
    } catch (const zmq::error_t& e) {
      return vnvram::Status::Unavailable("bind " + listen + ": " + e.what());
    }
    *bound = router_->get(zmq::sockopt::last_endpoint);
    router_fd_ = router_->get(zmq::sockopt::fd);
    for (const HostEntry& h : c.hosts) {
      if (h.id == opt_.host_id) continue;
      // Only peers that share a volume with this host.
      bool shares = false;
      for (const VolumeEntry& v : c.volumes) {
        shares = shares || (v.HasReplica(h.id) && v.HasReplica(opt_.host_id));
      }
      if (!shares) continue;
      Peer p;
      p.id = h.id;
      p.endpoint = h.endpoint;
      p.public_key = h.public_key;
      VNVRAM_RETURN_IF_ERROR(OpenDealer(p));
      peers_.emplace(h.id, std::move(p));
    }
  } catch (const zmq::error_t& e) {
    return vnvram::Status::Internal(std::string("zeromq: ") + e.what());
  }
  for (auto& [key, replica] : volumes_) {
    VolumeState vs;
    vs.replica = replica;
    const VolumeView v = replica->View();
    // The first replica starts the group when it is new, or restarts after a
    // clean shutdown (docs/replication.md "Epochs and promotion").
    vs.startup_proposal = replica->entry().replicas.front() == opt_.host_id && v.vouch;
    vstate_.emplace(key, std::move(vs));
  }
  // A first snapshot before the thread runs: GetStatus() lists every volume
  // from the start (vnvramd watches the promote requests of those it lists).
  PublishStatus();
  return vnvram::Status::Ok();
}

vnvram::Status Engine::IoThread::OpenDealer(Peer& p) {
  const ClusterConfig& c = opt_.cluster;
  // One DEALER with its link monitor; `routing_id` tells the peer which.
  auto open = [&](const std::string& routing_id, std::unique_ptr<zmq::socket_t>* dealer,
                  std::unique_ptr<zmq::socket_t>* monitor) -> vnvram::Status {
    auto d = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::dealer);
    d->set(zmq::sockopt::routing_id, routing_id);
    d->set(zmq::sockopt::immediate, 1);
    d->set(zmq::sockopt::linger, 0);
    d->set(zmq::sockopt::sndhwm, kSendHighWaterMark);
    d->set(zmq::sockopt::rcvhwm, kSendHighWaterMark);
    d->set(zmq::sockopt::maxmsgsize, kMaxMessageSize);
    d->set(zmq::sockopt::heartbeat_ivl, static_cast<int>(c.settings.heartbeat_interval_ms));
    d->set(zmq::sockopt::heartbeat_timeout, static_cast<int>(c.settings.peer_expiry_ms));
    // Reconnect well within the peer expiry, so a restarted peer is back
    // before it is declared down again.
    d->set(zmq::sockopt::reconnect_ivl, 50);
    d->set(zmq::sockopt::reconnect_ivl_max,
           static_cast<int>(std::clamp<uint32_t>(c.settings.peer_expiry_ms / 4, 50, 1000)));
    if (c.curve_enabled()) {
      VNVRAM_RETURN_IF_ERROR(ConfigureCurveClient(*d, *opt_.keys, *p.public_key));
    }
    // Link events: a dropped connection (the peer's process died) outdates
    // its replicas at once instead of after the peer expiry; handshake
    // outcomes tell "refused" (CurveZMQ) from "down".
    const std::string mon = "inproc://vnvram-monitor-" + p.id + "-" + std::to_string(++monitors_);
    int events = ZMQ_EVENT_DISCONNECTED;
    if (c.curve_enabled()) {
      events |= ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                ZMQ_EVENT_HANDSHAKE_SUCCEEDED;
    }
    if (zmq_socket_monitor(d->handle(), mon.c_str(), events) != 0) {
      return vnvram::Status::FromErrno(zmq_errno(), "monitor the link to " + p.id);
    }
    auto m = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::pair);
    m->set(zmq::sockopt::linger, 0);
    m->connect(mon);
    d->connect(p.endpoint);
    *monitor = std::move(m);
    *dealer = std::move(d);
    return vnvram::Status::Ok();
  };
  try {
    p.dealer_fd = p.monitor_fd = p.data_monitor_fd = -1;
    p.monitor.reset();
    p.dealer.reset();
    p.data_monitor.reset();
    if (!p.data) p.data = std::make_shared<DataLink>(p.id, clock_);
    p.data->Reset(nullptr);
    VNVRAM_RETURN_IF_ERROR(open(opt_.host_id, &p.dealer, &p.monitor));
    std::unique_ptr<zmq::socket_t> data;
    VNVRAM_RETURN_IF_ERROR(open(opt_.host_id + std::string(kDataSuffix), &data, &p.data_monitor));
    p.dealer_fd = p.dealer->get(zmq::sockopt::fd);
    p.monitor_fd = p.monitor->get(zmq::sockopt::fd);
    p.data_monitor_fd = p.data_monitor->get(zmq::sockopt::fd);
    reread_ = true;  // new sockets: read them before relying on their ZMQ_FD
    // From here on the socket belongs to the link (used under its mutex).
    p.data->Reset(std::move(data));
  } catch (const zmq::error_t& e) {
    return vnvram::Status::Internal("zeromq socket to " + p.id + ": " + e.what());
  }
  p.out_session = false;
  return vnvram::Status::Ok();
}

void Engine::IoThread::HandleMonitor(Peer& p, zmq::socket_t& monitor) {
  for (;;) {
    zmq::message_t event;
    zmq::message_t address;
    try {
      if (!monitor.recv(event, zmq::recv_flags::dontwait)) return;
      if (event.more()) (void)monitor.recv(address, zmq::recv_flags::none);
    } catch (const zmq::error_t&) {
      return;
    }
    if (event.size() < 6) continue;
    uint16_t id = 0;
    std::memcpy(&id, event.data(), sizeof(id));
    if (id == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
      if (p.refused) dirty_ = true;
      p.refused = false;
      continue;
    }
    if (id == ZMQ_EVENT_DISCONNECTED) {
      // Frames queued to it are gone with the connection (data), or its
      // answers are (control): its replicas are behind, and the session
      // must be re-opened when it is back.
      if (p.out_session) LoseSession(p, "connection lost");
      continue;
    }
    if (!p.refused) {
      spdlog::warn(
          "replication: CurveZMQ handshake with {} ({}) failed: {}; check its "
          "public-key in the cluster file and this host's key file",
          p.id, p.endpoint,
          id == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH ? "our key was refused"
                                                : "the server's key did not match");
      dirty_ = true;
    }
    p.refused = true;
    p.refused_at = clock_.Now();
  }
}

void Engine::IoThread::Stop() {
  if (thread_.joinable()) {
    stop_ = true;
    Wake();
    thread_.join();
  }
  for (auto& [key, vs] : vstate_) vs.replica->ClearFanOut();
  for (auto& [id, p] : peers_) {
    p.monitor.reset();
    p.dealer.reset();
    p.data_monitor.reset();
    // Closed before the context ends; a persist still holding the link
    // finds it closed.
    if (p.data) p.data->Reset(nullptr);
  }
  router_.reset();
  zap_.reset();
  if (wake_fd_ >= 0) {
    ::close(wake_fd_);
    wake_fd_ = -1;
  }
}

void Engine::IoThread::Run() {
  spdlog::info("replication: host {} incarnation {:016x}, {} peer(s), {} volume(s)", opt_.host_id,
               incarnation_, peers_.size(), vstate_.size());
  for (auto& [id, p] : peers_) SendHello(p);
  const auto tick_every = milliseconds(std::max<uint32_t>(
      5, std::min<uint32_t>(opt_.cluster.settings.heartbeat_interval_ms / 2, 50)));
  Nanos next_tick = clock_.Now();
  // Every socket is polled by its ZMQ_FD, which signals only that the
  // socket has news since it was last read: so each is read until EAGAIN
  // whenever its descriptor is readable, on every tick as a safety net, and
  // again at once when a round stopped early (budget). One poll(2) a round,
  // where zmq_poll costs a few system calls per socket, on both hosts'
  // side of every acknowledged persist. Sound because only this thread uses
  // these sockets, the control DEALERs and the monitors only receive, and the
  // ROUTER sends only its answers, inside HandleRouter's reading loop.
  std::vector<pollfd> fds;
  std::vector<Peer*> order;
  bool again = true;  // read everything first
  while (!stop_) {
    fds.clear();
    order.clear();
    fds.push_back({router_fd_, POLLIN, 0});
    fds.push_back({wake_fd_, POLLIN, 0});
    for (auto& [id, p] : peers_) {
      fds.push_back({p.dealer_fd, POLLIN, 0});
      fds.push_back({p.monitor_fd, POLLIN, 0});
      fds.push_back({p.data_monitor_fd, POLLIN, 0});
      order.push_back(&p);
    }
    bool busy = false;
    for (auto& [key, vs] : vstate_) {
      for (auto& [h, t] : vs.tracks) busy = busy || t.state == ReplicaLinkState::kSyncing;
      busy = busy || !vs.sources.empty();
    }
    const Nanos now = clock_.Now();
    long timeout_ms = busy ? 1 : std::chrono::duration_cast<milliseconds>(next_tick - now).count();
    timeout_ms = again ? 0 : std::clamp<long>(timeout_ms, 0, 1000);
    if (::poll(fds.data(), fds.size(), static_cast<int>(timeout_ms)) < 0 && errno != EINTR) {
      spdlog::error("replication poll: {}", std::strerror(errno));
    }
    const bool all = again || reread_ || clock_.Now() >= next_tick;
    again = false;
    reread_ = false;
    if (fds[1].revents != 0) {
      uint64_t n = 0;
      (void)!::read(wake_fd_, &n, sizeof(n));
    }
    RunCommands();
    if (all || fds[0].revents != 0) again = !HandleRouter() || again;
    for (size_t i = 0; i < order.size(); ++i) {
      Peer& p = *order[i];
      if (p.dealer && (all || fds[2 + 3 * i].revents != 0)) again = !HandleDealer(p) || again;
      if (p.monitor && (all || fds[3 + 3 * i].revents != 0)) HandleMonitor(p, *p.monitor);
      if (p.data_monitor && (all || fds[4 + 3 * i].revents != 0)) {
        HandleMonitor(p, *p.data_monitor);
      }
    }
    FanOutNews();
    DriveResyncs();
    if (clock_.Now() >= next_tick) {
      Tick();
      next_tick = clock_.Now() + tick_every;
    }
    if (dirty_) {
      PublishStatus();
    } else if (clock_.Now() - last_snapshot_ > milliseconds(200)) {
      // Acknowledged sequences move without state changes: refresh the
      // snapshot now and then, without waking vnvramd for it.
      PublishStatus(/*notify=*/false);
    }
  }
}

void Engine::IoThread::RunCommands() {
  std::deque<std::function<void()>> cmds;
  {
    std::lock_guard lock(cmd_mu_);
    cmds.swap(commands_);
  }
  for (auto& fn : cmds) fn();
}

// ---- sending -------------------------------------------------------------

bool Engine::IoThread::SendFrameTo(Peer& p, const Bytes& frame) {
  return p.data->Send(frame);
}

bool Engine::IoThread::SendTo(Peer& p, const Message& m) {
  auto f = Encode(m, limits_);
  if (!f.ok()) {
    spdlog::error("replication: cannot encode {} for {}: {}",
                  TypeName(static_cast<uint8_t>(TypeOf(m))), p.id, f.status().ToString());
    return false;
  }
  return SendFrameTo(p, *f);
}

void Engine::IoThread::Reply(const std::string& to, const Message& m) {
  auto f = Encode(m, limits_);
  if (!f.ok()) {
    spdlog::error("replication: cannot encode a reply: {}", f.status().ToString());
    return;
  }
  try {
    if (!router_->send(zmq::buffer(to), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
      return;
    }
    (void)router_->send(ToMessage(*f), zmq::send_flags::dontwait);
  } catch (const zmq::error_t& e) {
    // EHOSTUNREACH (ROUTER_MANDATORY): the peer left; it re-opens with HELLO.
    spdlog::debug("replication: reply to {}: {}", to, e.what());
  }
}

void Engine::IoThread::ReplyInvalid(const std::string& to, wire::InvalidReason why,
                                    std::string text) {
  ++frames_refused_;
  if (text.size() > wire::kReasonMax) text.resize(wire::kReasonMax);
  for (char& c : text) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
  Reply(to, Invalid{why, std::move(text)});
}

void Engine::IoThread::SendHello(Peer& p) {
  p.hello_sent = clock_.Now();
  Hello h{opt_.host_id, incarnation_, opt_.cluster.settings.max_data};
  (void)SendTo(p, h);
}

// ---- receiving -----------------------------------------------------------

bool Engine::IoThread::HandleRouter() {
  for (int budget = 0; budget < 1024; ++budget) {
    zmq::message_t id;
    zmq::message_t payload;
    try {
      if (!router_->recv(id, zmq::recv_flags::dontwait)) return true;
      if (!id.more()) continue;
      (void)router_->recv(payload, zmq::recv_flags::none);
      // Drop any further parts: one frame per message.
      while (payload.more()) {
        zmq::message_t extra;
        (void)router_->recv(extra, zmq::recv_flags::none);
        payload.swap(extra);
      }
    } catch (const zmq::error_t& e) {
      spdlog::warn("replication: receive: {}", e.what());
      return true;
    }
    ++frames_in_;
    OnRouterFrame(id.to_string(), payload);
  }
  return false;
}

void Engine::IoThread::OnRouterFrame(const std::string& routing_id, zmq::message_t& payload) {
  auto decoded = Decode(AsBytes(payload), limits_);
  // A host's requests come from its data DEALER ("<host>/data"); it is that
  // host, and its answers go to its control DEALER ("<host>"). Anyone else
  // (a tool, a stranger) is answered on the connection it used.
  std::string_view id = routing_id;
  if (id.ends_with(kDataSuffix)) id.remove_suffix(kDataSuffix.size());
  Peer* p = FindPeer(id);
  if (p != nullptr && opt_.cluster.curve_enabled()) {
    // With CurveZMQ a routing id names a host only over a connection ZAP
    // admitted as that host; over any other it is a stranger's (answered
    // on its own connection, its bad frames not counted against the host).
    auto user = AdmittedHostId(payload);
    if (!user.ok() || *user != p->id) p = nullptr;
  }
  const std::string& from = p != nullptr ? p->id : routing_id;
  if (!decoded.ok()) {
    const auto why =
        decoded.status().code() == Code::kNotSupported        ? wire::InvalidReason::kBadVersion
        : decoded.status().code() == Code::kResourceExhausted ? wire::InvalidReason::kOversize
        : decoded.status().code() == Code::kCorruption        ? wire::InvalidReason::kBadChecksum
                                                              : wire::InvalidReason::kMalformed;
    spdlog::warn("replication: refused a frame from {}: {}", QuoteForError(from),
                 decoded.status().message());
    ReplyInvalid(from, why, decoded.status().message());
    if (p != nullptr && ++p->bad_frames >= kMaxBadFrames) {
      // Its session ends on both sides: its next request is refused
      // (no-session), which makes it re-open with HELLO.
      p->in_session = false;
      LoseSession(*p, "too many bad frames");
    }
    return;
  }
  Message& m = *decoded;
  // With CurveZMQ, ZAP bound the connection to a host: it must be `from`.
  if (opt_.cluster.curve_enabled() && !std::holds_alternative<Inspect>(m)) {
    auto user = AdmittedHostId(payload);
    if (!user.ok() || from != *user) {
      spdlog::warn("replication: frame from {} over a connection authenticated as {}",
                   QuoteForError(from), user.ok() ? *user : std::string("nobody"));
      ReplyInvalid(routing_id, wire::InvalidReason::kUnknownPeer,
                   "routing id does not match the key");
      return;
    }
  }
  if (auto* inspect = std::get_if<Inspect>(&m)) {
    // Sessionless (tools); CurveZMQ, when on, admitted only listed keys.
    auto it = volumes_.find(inspect->volume.ToString());
    InspectReply r;
    r.volume = inspect->volume;
    r.offset = inspect->offset;
    if (it != volumes_.end()) r = it->second->Inspect(*inspect);
    Reply(routing_id, r);
    return;
  }
  if (auto* hello = std::get_if<Hello>(&m)) {
    if (p == nullptr || hello->host_id != from) {
      spdlog::warn("replication: HELLO from unknown host {}", QuoteForError(hello->host_id));
      ReplyInvalid(from, wire::InvalidReason::kUnknownPeer,
                   "host " + hello->host_id + " shares no volume with " + opt_.host_id);
      return;
    }
    if (p->in_incarnation != 0 && p->in_incarnation != hello->incarnation) PeerRestarted(*p);
    p->in_incarnation = hello->incarnation;
    p->in_session = true;
    p->bad_frames = 0;
    Seen(*p);
    Reply(from, HelloAck{opt_.host_id, incarnation_, opt_.cluster.settings.max_data});
    return;
  }
  if (p == nullptr || !p->in_session) {
    ReplyInvalid(from, wire::InvalidReason::kNoSession, "send HELLO first");
    return;
  }
  Seen(*p);
  p->bad_frames = 0;
  if (auto* hb = std::get_if<Heartbeat>(&m)) {
    if (hb->incarnation != p->in_incarnation) {
      PeerRestarted(*p);
      p->in_incarnation = hb->incarnation;
    }
    return;
  }
  auto volume_of = [&](const Uuid& u) -> VolumeState* {
    VolumeState* vs = FindVolume(u);
    if (vs == nullptr || !vs->replica->entry().HasReplica(from)) return nullptr;
    return vs;
  };
  if (auto* r = std::get_if<Replicate>(&m)) {
    VolumeState* vs = volume_of(r->volume);
    if (vs == nullptr) {
      Reply(from, Ack{r->volume, 0, 0,
                      FindVolume(r->volume) ? wire::AckStatus::kNotReplica
                                            : wire::AckStatus::kUnknownVolume});
      return;
    }
    const bool was_primary = vs->replica->View().role == Role::kPrimary;
    ReplicaAnswer a = vs->replica->OnReplicate(*r);
    if (a.reply) Reply(from, *a.reply);
    if (a.changed) dirty_ = true;
    const VolumeView after = vs->replica->View();
    if (was_primary && after.role != Role::kPrimary) ClearTracks(*vs);
    if (after.role == Role::kReplica && r->epoch == after.promise) Follow(*vs, from);
    return;
  }
  if (auto* c = std::get_if<ResyncChunk>(&m)) {
    VolumeState* vs = volume_of(c->volume);
    if (vs == nullptr) return;
    ReplicaAnswer a = vs->replica->OnResyncChunk(*c);
    if (a.reply) Reply(from, *a.reply);
    if (a.changed) dirty_ = true;
    const VolumeView after = vs->replica->View();
    if (after.role == Role::kReplica && c->epoch == after.promise) Follow(*vs, from);
    return;
  }
  if (auto* d = std::get_if<ResyncDone>(&m)) {
    VolumeState* vs = volume_of(d->volume);
    if (vs == nullptr) return;
    ReplicaAnswer a = vs->replica->OnResyncDone(*d);
    if (a.reply) Reply(from, *a.reply);
    dirty_ = true;
    if (vs->election && vs->election->adopting && vs->election->source == from &&
        d->epoch == vs->election->epoch && a.reply && std::holds_alternative<Ack>(*a.reply) &&
        std::get<Ack>(*a.reply).status == wire::AckStatus::kOk) {
      spdlog::info("volume {}: adopted the copy of {} (sequence {})", vs->replica->entry().name,
                   from, d->sequence);
      BecomePrimary(vs->replica->uuid().ToString(), *vs);
    }
    return;
  }
  if (auto* prop = std::get_if<EpochPropose>(&m)) {
    VolumeState* vs = FindVolume(prop->volume);
    if (vs == nullptr) {
      Reply(from, EpochReject{prop->volume, prop->proposed_epoch, 0, 0, 0,
                              wire::RejectReason::kUnknownVolume});
      return;
    }
    if (prop->takeover) {
      // A takeover is for a primary that is gone: refuse it while this host
      // is, or reaches, a live primary other than the candidate.
      const VolumeView v = vs->replica->View();
      std::string alive;
      if (v.role == Role::kPrimary) {
        alive = opt_.host_id;
      } else if (!vs->primary_host.empty() && vs->primary_host != prop->candidate &&
                 vs->primary_host != opt_.host_id) {
        const Peer* pp = FindPeer(vs->primary_host);
        if (pp != nullptr && pp->out_session && pp->up) alive = vs->primary_host;
      }
      if (!alive.empty()) {
        spdlog::info("volume {}: refused takeover epoch {} by {}: primary {} is alive",
                     vs->replica->entry().name, prop->proposed_epoch, from, alive);
        if (alive == opt_.host_id) vs->refused_candidacy = {from, prop->proposed_epoch};
        Reply(from, EpochReject{prop->volume, prop->proposed_epoch, v.promise, v.content_epoch,
                                v.content_seq, wire::RejectReason::kPrimaryAlive});
        return;
      }
    }
    const Role before = vs->replica->View().role;
    Message answer = vs->replica->OnPropose(*prop, from);
    const Role after = vs->replica->View().role;
    if ((before == Role::kPrimary || before == Role::kCandidate) && after != before) {
      ClearTracks(*vs);
      if (vs->election) FinishElection(*vs, PromoteResult::kSuperseded);
    }
    spdlog::info("volume {}: {} epoch {} proposed by {}", vs->replica->entry().name,
                 std::holds_alternative<EpochAccept>(answer) ? "accepted" : "rejected",
                 prop->proposed_epoch, from);
    if (std::holds_alternative<EpochAccept>(answer)) Follow(*vs, prop->candidate);
    Reply(from, answer);
    dirty_ = true;
    return;
  }
  if (auto* req = std::get_if<ResyncRequest>(&m)) {
    VolumeState* vs = volume_of(req->volume);
    if (vs == nullptr) return;
    const VolumeView v = vs->replica->View();
    if (v.role == Role::kPrimary && req->epoch == v.epoch) {
      Track& t = vs->tracks[from];
      if (req->since_sequence != 0) t.since = req->since_sequence;
      if (t.state != ReplicaLinkState::kSyncing) StartResync(*vs, from, t);
      return;
    }
    auto cand = vs->replica->AcceptedCandidate(req->epoch);
    if (cand && *cand == from) {
      // Adoption: this voter holds the freshest copy; send all of it.
      SourceResync s;
      s.target = from;
      s.epoch = req->epoch;
      s.seq = v.content_seq;
      s.chunk_count = vs->replica->ChunkCount(req->chunk_size);
      vs->sources.erase(std::remove_if(vs->sources.begin(), vs->sources.end(),
                                       [&](const SourceResync& o) { return o.target == from; }),
                        vs->sources.end());
      vs->sources.push_back(s);
      spdlog::info("volume {}: sending my copy (sequence {}) to candidate {} of epoch {}",
                   vs->replica->entry().name, s.seq, from, req->epoch);
    }
    return;
  }
  // Answers belong on the DEALER side; a peer sending them here is confused.
  ReplyInvalid(from, wire::InvalidReason::kMalformed,
               std::string(TypeName(static_cast<uint8_t>(TypeOf(m)))) + " is not a request");
}

bool Engine::IoThread::HandleDealer(Peer& p) {
  for (int budget = 0; budget < 1024; ++budget) {
    zmq::message_t msg;
    try {
      if (!p.dealer->recv(msg, zmq::recv_flags::dontwait)) return true;
      while (msg.more()) {
        zmq::message_t extra;
        (void)p.dealer->recv(extra, zmq::recv_flags::none);
        msg.swap(extra);
      }
    } catch (const zmq::error_t& e) {
      spdlog::warn("replication: receive from {}: {}", p.id, e.what());
      return true;
    }
    ++frames_in_;
    auto decoded = Decode(AsBytes(msg), limits_);
    if (!decoded.ok()) {
      ++frames_refused_;
      spdlog::warn("replication: refused a frame from {}: {}", p.id, decoded.status().message());
      if (++p.bad_frames >= kMaxBadFrames) LoseSession(p, "too many bad frames");
      continue;
    }
    Seen(p);
    OnDealerFrame(p, *decoded);
  }
  return false;
}

void Engine::IoThread::OnDealerFrame(Peer& p, const Message& m) {
  if (auto* ack = std::get_if<HelloAck>(&m)) {
    if (ack->host_id != p.id) {
      spdlog::warn("replication: {} answered HELLO as {}", p.id, QuoteForError(ack->host_id));
      return;
    }
    if (p.in_incarnation != 0 && ack->incarnation != p.in_incarnation) {
      // The answer of a new process (its own HELLO to our ROUTER may come
      // later): whatever this host remembers of the peer's copies, the
      // positions it acknowledged, is gone with the old one. Without this a
      // resync could start before that HELLO, from the dirty chunks since
      // the old process's position, over a copy restarted from an older
      // vault, and vouch for it.
      PeerRestarted(p, /*session_is_new=*/true);
    }
    p.in_incarnation = ack->incarnation;
    if (!p.out_session) spdlog::info("replication: session to {} open", p.id);
    p.out_session = true;
    p.bad_frames = 0;
    dirty_ = true;
    // An election in progress asks this newcomer too.
    for (auto& [key, vs] : vstate_) {
      if (vs.election && !vs.election->adopting && !vs.election->confirming &&
          vs.replica->entry().HasReplica(p.id) && vs.election->asked.insert(p.id).second) {
        const VolumeView v = vs.replica->View();
        (void)SendTo(p, EpochPropose{vs.replica->uuid(), vs.election->epoch, v.content_epoch,
                                     v.content_seq, opt_.host_id, vs.election->takeover});
      }
    }
    return;
  }
  if (auto* inv = std::get_if<Invalid>(&m)) {
    ++frames_refused_;
    spdlog::warn("replication: {} refused our frame: {} ({})", p.id, inv->text,
                 static_cast<uint32_t>(inv->reason));
    if (inv->reason == wire::InvalidReason::kNoSession ||
        inv->reason == wire::InvalidReason::kUnknownPeer) {
      LoseSession(p, "peer has no session for us");
    }
    return;
  }
  if (auto* a = std::get_if<Ack>(&m)) {
    OnAck(p, *a);
    return;
  }
  if (auto* g = std::get_if<Gap>(&m)) {
    VolumeState* vs = FindVolume(g->volume);
    if (vs == nullptr) return;
    for (SourceResync& s : vs->sources) {
      if (s.target == p.id && s.epoch == g->epoch) {
        // The candidate lost part of the copy this host feeds it: again.
        spdlog::warn("volume {}: {} lost part of the adopted copy: sending it again",
                     vs->replica->entry().name, p.id);
        s.next = 0;
      }
    }
    const VolumeView v = vs->replica->View();
    if (v.role != Role::kPrimary || g->epoch != v.epoch) return;
    Track& t = vs->tracks[p.id];
    if (t.state == ReplicaLinkState::kSyncing) {
      // The resync run lost frames on the way (a dropped connection): a new
      // run, from what the replica last held in sync (MarkOutdated).
      MarkOutdated(*vs, p.id, t, "lost frames of its resync");
    } else {
      t.since = g->expected_sequence > 0 ? std::optional<uint64_t>(g->expected_sequence - 1)
                                         : std::nullopt;
      MarkOutdated(*vs, p.id, t, "reported a gap");
    }
    if (p.out_session && clock_.Now() >= t.resync_after) StartResync(*vs, p.id, t);
    return;
  }
  if (auto* acc = std::get_if<EpochAccept>(&m)) {
    VolumeState* vs = FindVolume(acc->volume);
    if (vs == nullptr || !vs->election || vs->election->epoch != acc->epoch) return;
    vs->election->accepts[p.id] = {acc->last_epoch, acc->last_sequence};
    CheckElection(vs->replica->uuid().ToString(), *vs);
    return;
  }
  if (auto* rej = std::get_if<EpochReject>(&m)) {
    VolumeState* vs = FindVolume(rej->volume);
    if (vs == nullptr || !vs->election || vs->election->epoch != rej->proposed_epoch) return;
    if (rej->reason == wire::RejectReason::kPrimaryAlive && !vs->election->adopting &&
        !vs->election->confirming && clock_.Now() < vs->election->takeover_until) {
      spdlog::info("volume {}: {} still hears the primary: proposing again shortly",
                   vs->replica->entry().name, p.id);
      VolumeState::TakeoverRetry r;
      r.at = clock_.Now() + milliseconds(opt_.cluster.settings.heartbeat_interval_ms);
      r.until = vs->election->takeover_until;
      r.waiters = std::move(vs->election->waiters);
      vs->replica->AbandonCandidacy(rej->proposed_epoch);
      vs->election.reset();
      vs->retry = std::move(r);
      dirty_ = true;
      return;
    }
    if (rej->reason == wire::RejectReason::kPrimaryAlive && !vs->election->adopting &&
        !vs->election->confirming) {
      spdlog::warn("volume {}: {} reports a live primary: giving up takeover epoch {}",
                   vs->replica->entry().name, p.id, rej->proposed_epoch);
      vs->replica->AbandonCandidacy(rej->proposed_epoch);
      FinishElection(*vs, PromoteResult::kError,
                     "host " + p.id + " reports the volume's primary alive: not taking over");
      return;
    }
    if (rej->promised_epoch >= rej->proposed_epoch) {
      spdlog::warn("volume {}: {} promised epoch {} already: giving up epoch {}",
                   vs->replica->entry().name, p.id, rej->promised_epoch, rej->proposed_epoch);
      vs->replica->StepDown(false, rej->promised_epoch);
      FinishElection(*vs, PromoteResult::kSuperseded);
    }
    return;
  }
  // HEARTBEAT answers are not expected; INSPECT_REPLY belongs to tools.
}

void Engine::IoThread::OnAck(Peer& p, const Ack& a) {
  VolumeState* vs = FindVolume(a.volume);
  if (vs == nullptr) return;
  const VolumeView v = vs->replica->View();
  if (a.status == wire::AckStatus::kStaleEpoch) {
    if (v.role == Role::kPrimary && vs->refused_candidacy.first == p.id &&
        a.epoch == vs->refused_candidacy.second) {
      // The candidate whose takeover this primary refused answers with the
      // epoch it promised itself until it drops its candidacy. It cannot
      // win that epoch without another voter, whose own answers would
      // fence this host; until then its copy is only behind.
      auto it = vs->tracks.find(p.id);
      if (it != vs->tracks.end()) {
        MarkOutdated(*vs, p.id, it->second,
                     "its refused candidacy of epoch " + std::to_string(a.epoch));
      }
      return;
    }
    if (a.epoch > v.epoch) {
      spdlog::warn("volume {}: {} is at epoch {}: this host ({} of epoch {}) is fenced",
                   vs->replica->entry().name, p.id, a.epoch, RoleName(v.role), v.epoch);
      vs->replica->StepDown(/*fenced=*/true, a.epoch);
      ClearTracks(*vs);
      Follow(*vs, "");  // some other host leads the newer epoch
      if (vs->election) FinishElection(*vs, PromoteResult::kSuperseded);
      dirty_ = true;
    }
    return;
  }
  if (v.role != Role::kPrimary || a.epoch != v.epoch) return;
  auto it = vs->tracks.find(p.id);
  if (it == vs->tracks.end()) return;
  Track& t = it->second;
  if (a.status != wire::AckStatus::kOk) {
    MarkOutdated(*vs, p.id, t, "refused a frame");
    return;
  }
  t.acked = std::max(t.acked, a.acked_sequence);
  if (t.state == ReplicaLinkState::kInSync) vs->replica->FanOutAcked(p.id, t.acked);
  if (t.state == ReplicaLinkState::kSyncing && t.done_sent && t.acked >= t.done_seq) {
    t.state = ReplicaLinkState::kInSync;
    // Its frames count for flow control and ack timeouts from now on.
    vs->replica->SetFanOut(p.id, p.data, /*in_sync=*/true);
    t.chunks.clear();
    spdlog::info("volume {}: replica {} in sync at sequence {}", vs->replica->entry().name, p.id,
                 t.acked);
    dirty_ = true;
    UpdateServing(*vs);
  }
  RecomputeDurable(*vs);
}

void Engine::IoThread::Seen(Peer& p) {
  p.last_seen = clock_.Now();
  p.last_seen_wall_ms =
      static_cast<uint64_t>(std::chrono::duration_cast<milliseconds>(clock_.WallNow()).count());
  if (!p.up) {
    p.up = true;
    dirty_ = true;
    spdlog::info("replication: peer {} up", p.id);
    for (auto& [key, vs] : vstate_) {
      auto it = vs.tracks.find(p.id);
      if (it != vs.tracks.end() && it->second.state == ReplicaLinkState::kDown) {
        it->second.state = ReplicaLinkState::kOutdated;
      }
    }
  }
}

void Engine::IoThread::PeerRestarted(Peer& p, bool session_is_new) {
  spdlog::warn("replication: peer {} restarted (new incarnation): its copies need a full resync",
               p.id);
  for (auto& [key, vs] : vstate_) {
    auto it = vs.tracks.find(p.id);
    if (it == vs.tracks.end()) continue;
    it->second.acked = 0;
    it->second.since.reset();
    MarkOutdated(vs, p.id, it->second, "restarted");
  }
  // Our DEALER's session died with the old process (unless it is the one
  // that just opened, to the new process).
  if (!session_is_new) LoseSession(p, "peer restarted");
}

void Engine::IoThread::LoseSession(Peer& p, std::string_view why) {
  spdlog::info("replication: session to {} re-opened: {}", p.id, why);
  p.lost_at = clock_.Now();
  p.out_session = false;
  dirty_ = true;  // primary-link of the volumes that follow it
  p.bad_frames = 0;
  for (auto& [key, vs] : vstate_) {
    auto it = vs.tracks.find(p.id);
    if (it != vs.tracks.end() && it->second.state != ReplicaLinkState::kDown) {
      MarkOutdated(vs, p.id, it->second, why);
    }
  }
  SendHello(p);
}

// ---- the primary's data path ----------------------------------------------

void Engine::IoThread::MarkOutdated(VolumeState& vs, const std::string& host, Track& t,
                                    std::string_view why) {
  if (t.state == ReplicaLinkState::kOutdated || t.state == ReplicaLinkState::kDown) return;
  spdlog::warn("volume {}: replica {} outdated: {}", vs.replica->entry().name, host, why);
  const Nanos now = clock_.Now();
  const Nanos expiry = milliseconds(opt_.cluster.settings.peer_expiry_ms);
  if (t.state == ReplicaLinkState::kSyncing && now - t.resync_started < expiry) {
    // The resync failed right away: do not restart it in a tight loop.
    t.backoff = std::clamp<Nanos>(t.backoff * 2, milliseconds(10), 2 * expiry);
  } else {
    t.backoff = Nanos{0};
  }
  t.resync_after = now + t.backoff;
  t.state = ReplicaLinkState::kOutdated;
  if (!t.since) t.since = t.acked;
  t.chunks.clear();
  t.done_sent = false;
  vs.replica->RemoveFanOut(host);
  dirty_ = true;
  UpdateServing(vs);
  RecomputeDurable(vs);
}

void Engine::IoThread::FanOutNews() {
  for (auto& [key, vs] : vstate_) {
    replication::FanOutNews news = vs.replica->TakeFanOutNews();
    for (auto& [host, why] : news.dropped) {
      auto it = vs.tracks.find(host);
      if (it != vs.tracks.end()) MarkOutdated(vs, host, it->second, why);
    }
    if (news.recompute || !news.dropped.empty()) RecomputeDurable(vs);
  }
}

void Engine::IoThread::RecomputeDurable(VolumeState& vs) {
  const VolumeView v = vs.replica->View();
  if (v.role != Role::kPrimary || vs.replica->entry().policy == Policy::kAsync) return;
  // Acknowledged: applied by every in-sync replica and by a majority
  // (the primary counts itself, holding everything it assigned).
  std::vector<uint64_t> held{v.content_seq};
  uint64_t min_in_sync = UINT64_MAX;
  for (auto& [host, t] : vs.tracks) {
    if (t.state != ReplicaLinkState::kInSync) continue;
    held.push_back(t.acked);
    min_in_sync = std::min(min_in_sync, t.acked);
  }
  const size_t need = Required(vs);
  if (held.size() < need) return;
  std::sort(held.begin(), held.end(), std::greater<>());
  const uint64_t by_majority = held[need - 1];
  vs.replica->SetDurable(std::min(by_majority, min_in_sync));
}

void Engine::IoThread::UpdateServing(VolumeState& vs) {
  const VolumeView v = vs.replica->View();
  if (v.role != Role::kPrimary) return;
  size_t in_sync = 1;
  for (auto& [host, t] : vs.tracks) in_sync += t.state == ReplicaLinkState::kInSync ? 1 : 0;
  const bool serving = in_sync >= Required(vs);
  if (serving != v.serving) {
    vs.replica->SetServing(serving);
    dirty_ = true;
    spdlog::info("volume {}: {} (epoch {}, {} of {} hosts in sync)", vs.replica->entry().name,
                 serving ? "serving" : "not serving: no majority in sync", v.epoch, in_sync,
                 vs.replica->entry().replicas.size());
  }
  if (serving && vs.election && vs.election->confirming) FinishElection(vs, PromoteResult::kOk);
}

void Engine::IoThread::StartResync(VolumeState& vs, const std::string& host, Track& t) {
  const VolumeView v = vs.replica->View();
  if (v.role != Role::kPrimary) return;
  Peer* p = FindPeer(host);
  if (p == nullptr) return;
  const uint32_t chunk = opt_.cluster.settings.resync_chunk;
  std::optional<std::vector<uint32_t>> dirty;
  if (t.since) dirty = vs.replica->ChunksSince(*t.since);
  t.chunks.clear();
  if (dirty) {
    t.chunks = std::move(*dirty);
    // At least one chunk: the replica enters this epoch's resync with it
    // (its copy may be of an older epoch), so the REPLICATEs sent from now
    // on land on top and RESYNC_DONE makes the copy this epoch's.
    if (t.chunks.empty()) t.chunks.push_back(0);
  } else {
    t.chunks.resize(vs.replica->ChunkCount(chunk));
    for (uint32_t i = 0; i < t.chunks.size(); ++i) t.chunks[i] = i;
  }
  t.next_chunk = 0;
  t.done_sent = false;
  t.state = ReplicaLinkState::kSyncing;
  t.resync_started = clock_.Now();
  // The run's first chunk, and every REPLICATE from now on after it, on the
  // stream the rest of its chunks take (DriveResyncs).
  if (!vs.replica->BeginResync(host, p->data, v.epoch, chunk, t.chunks[0], t.chunks.size() == 1)) {
    MarkOutdated(vs, host, t, "cannot queue the first chunk of its resync");
    return;
  }
  t.next_chunk = 1;
  spdlog::info("volume {}: resync of {} started: {} ({} of {} chunks)", vs.replica->entry().name,
               host,
               dirty ? "dirty chunks since sequence " + std::to_string(*t.since) : "full copy",
               t.chunks.size(), vs.replica->ChunkCount(chunk));
  t.since.reset();
  dirty_ = true;
}

void Engine::IoThread::DriveResyncs() {
  const uint32_t chunk = opt_.cluster.settings.resync_chunk;
  for (auto& [key, vs] : vstate_) {
    const VolumeView v = vs.replica->View();
    if (v.role == Role::kPrimary) {
      for (auto& [host, t] : vs.tracks) {
        if (t.state != ReplicaLinkState::kSyncing || t.done_sent) continue;
        Peer* p = FindPeer(host);
        if (p == nullptr || !p->out_session) {
          MarkOutdated(vs, host, t, "session lost during resync");
          continue;
        }
        size_t sent = 0;
        // Paced by the socket: a full queue (EAGAIN) waits for the next round.
        // A chunk is read and queued under the volume's send lock, so that a
        // REPLICATE of a later write follows it on the stream.
        while (t.next_chunk < t.chunks.size() && sent < kChunksPerRound) {
          const bool last = t.next_chunk + 1 == t.chunks.size();
          if (!vs.replica->SendResyncChunk(host, v.epoch, chunk, t.chunks[t.next_chunk], last)) {
            break;  // queue full (next round), or dropped (FanOutNews outdates it)
          }
          ++t.next_chunk;
          ++sent;
        }
        if (sent > 0) dirty_ = true;
        if (t.next_chunk == t.chunks.size()) {
          // Every REPLICATE after the resync started went to this replica
          // too, so it holds everything through the current sequence.
          if (auto seq = vs.replica->SendResyncDone(host, v.epoch,
                                                    static_cast<uint32_t>(t.chunks.size()))) {
            t.done_sent = true;
            t.done_seq = *seq;
          }
        }
      }
    }
    // Adoption sources (this host is a voter feeding a candidate).
    for (auto it = vs.sources.begin(); it != vs.sources.end();) {
      Peer* p = FindPeer(it->target);
      // The candidate gone (or this host promised a later epoch): drop the
      // copy. A session being re-opened (the candidate restarted just
      // before it asked) is waited for: dropping it then would leave the
      // candidate adopting for its whole deadline.
      if (p == nullptr || (!p->up && !p->out_session) || vs.replica->View().promise > it->epoch) {
        it = vs.sources.erase(it);
        continue;
      }
      if (!p->out_session) {
        ++it;
        continue;
      }
      size_t sent = 0;
      while (it->next < it->chunk_count && sent < kChunksPerRound) {
        ResyncChunk c = vs.replica->ReadChunk(it->epoch, chunk, it->next);
        c.first = it->next == 0;
        c.last = it->next + 1 == it->chunk_count;
        if (!SendTo(*p, c)) break;
        ++it->next;
        ++sent;
      }
      if (it->next == it->chunk_count &&
          SendTo(*p, ResyncDone{vs.replica->uuid(), it->epoch, it->seq, it->chunk_count})) {
        it = vs.sources.erase(it);
      } else {
        ++it;
      }
    }
  }
}

// ---- timers ----------------------------------------------------------------

void Engine::IoThread::Tick() {
  const Nanos now = clock_.Now();
  const auto& s = opt_.cluster.settings;
  const Nanos hb = milliseconds(s.heartbeat_interval_ms);
  const Nanos expiry = milliseconds(s.peer_expiry_ms);
  for (auto& [id, p] : peers_) {
    if (p.refused && !p.out_session && now - p.refused_at > expiry) {
      // libzmq does not retry a connection its peer's ZAP refused: re-open
      // it now and then, so a fixed key file is picked up.
      p.refused_at = now;
      if (vnvram::Status st = OpenDealer(p); !st.ok()) spdlog::error("{}", st.ToString());
    }
    if (!p.out_session) {
      if (now - p.hello_sent >= hb) SendHello(p);
    } else if (now - p.data->last_sent() >= hb) {
      (void)SendTo(p, Heartbeat{incarnation_, ++p.heartbeat_counter});
    }
    if (p.up && now - p.last_seen > expiry) {
      p.up = false;
      dirty_ = true;
      spdlog::warn("replication: peer {} down (silent for {} ms)", id, s.peer_expiry_ms);
      for (auto& [key, vs] : vstate_) {
        auto it = vs.tracks.find(id);
        if (it == vs.tracks.end()) continue;
        MarkOutdated(vs, id, it->second, "peer down");
        it->second.state = ReplicaLinkState::kDown;
      }
    }
  }
  for (auto& [key, vs] : vstate_) {
    const VolumeView v = vs.replica->View();
    if (v.role == Role::kPrimary) {
      const std::vector<std::string> overdue = vs.replica->FanOutOverdue(expiry);
      for (auto& [host, t] : vs.tracks) {
        Peer* p = FindPeer(host);
        if (t.state == ReplicaLinkState::kInSync &&
            std::find(overdue.begin(), overdue.end(), host) != overdue.end()) {
          MarkOutdated(vs, host, t, "no acknowledgement within peer-expiry-ms");
        }
        if (t.state == ReplicaLinkState::kOutdated && p != nullptr && p->out_session && p->up &&
            now >= t.resync_after) {
          StartResync(vs, host, t);
        }
      }
    }
    if (vs.startup_proposal && !vs.election) {
      size_t reachable = 1;
      for (const std::string& h : vs.replica->entry().replicas) {
        const Peer* p = FindPeer(h);
        reachable += (p != nullptr && p->out_session) ? 1 : 0;
      }
      const Nanos settle = 2 * milliseconds(opt_.cluster.settings.heartbeat_interval_ms);
      const bool led =
          v.syncing_epoch != 0 || (!vs.primary_host.empty() && vs.primary_host != opt_.host_id);
      if (reachable >= vs.replica->entry().majority() && led) {
        // A primary already serves and is resynchronising this host (it
        // starts as soon as the sessions open): nothing to propose.
        vs.startup_proposal = false;
        spdlog::info("volume {}: a primary serves the group: no start-up proposal",
                     vs.replica->entry().name);
      } else if (reachable >= vs.replica->entry().majority() && vs.startup_at == Nanos{0}) {
        // Give a live primary two heartbeats to show itself first.
        vs.startup_at = now + settle;
      } else if (reachable >= vs.replica->entry().majority() && now >= vs.startup_at) {
        vs.startup_proposal = false;
        // With the takeover flag: a first replica restarted while another
        // member leads (a clean restart of a replica) must not depose it;
        // voters that are or reach a live primary refuse, and this host
        // stays a replica to be resynchronised.
        if (v.role != Role::kPrimary) StartElection(key, false, 0, /*takeover=*/true);
      }
    }
    if (vs.retry && !vs.election && now >= vs.retry->at) {
      VolumeState::TakeoverRetry r = std::move(*vs.retry);
      vs.retry.reset();
      StartElection(key, /*force=*/false, 0, /*takeover=*/true);
      if (vs.election) {
        vs.election->takeover_until = r.until;
        for (ActivateCallback& w : r.waiters) vs.election->waiters.push_back(std::move(w));
      } else {
        for (ActivateCallback& w : r.waiters) {
          w({true, PromoteResult::kError, "cannot start an election (see the vnvramd log)"});
        }
      }
    }
    if (vs.deferred && vs.deferred->lease_until != Nanos{0}) {
      const Peer* p = vs.primary_host.empty() ? nullptr : FindPeer(vs.primary_host);
      const bool alive = PrimaryAlive(p);
      if (!vs.election && (!alive || now >= vs.deferred->lease_until)) {
        DeferredActivation d = std::move(*vs.deferred);
        vs.deferred.reset();
        if (!alive) {
          spdlog::info("volume {}: the primary is gone: activating", vs.replica->entry().name);
        }
        StartActivation(key, d.force, std::move(d.done), /*lease_waited=*/true);
      }
    } else if (vs.deferred && !vs.election && !CatchingUp(vs, v)) {
      DeferredActivation d = std::move(*vs.deferred);
      vs.deferred.reset();
      spdlog::info("volume {}: copy up to date: activating", vs.replica->entry().name);
      StartActivation(key, d.force, std::move(d.done));
    } else if (vs.deferred && now - vs.deferred->since > kMaxActivationWait) {
      ActivateCallback done = std::move(vs.deferred->done);
      vs.deferred.reset();
      done({true, PromoteResult::kError, "the resync of this host's copy did not finish in time"});
    }
    if (vs.election && now >= vs.election->deadline) {
      if (vs.election->force && !vs.election->adopting && !vs.election->confirming) {
        // Forced: decide with whatever answered.
        CheckElection(key, vs, /*at_deadline=*/true);
      } else {
        spdlog::warn("volume {}: epoch {} not {} in time", vs.replica->entry().name,
                     vs.election->epoch, vs.election->confirming ? "confirmed" : "accepted");
        const std::string why =
            "epoch " + std::to_string(vs.election->epoch) + " was not " +
            (vs.election->confirming ? "confirmed" : "accepted") + " by a majority (" +
            std::to_string(vs.replica->entry().majority()) + " of " +
            std::to_string(vs.replica->entry().replicas.size()) + " hosts) in time; " +
            std::to_string(vs.election->accepts.size() + (vs.election->self_votes ? 1 : 0)) +
            " voted";
        if (vs.election->accepts.empty() && !vs.election->adopting && !vs.election->confirming) {
          // Nobody took the epoch: forget it, so that the frames of a
          // primary this host could not hear from are not refused as stale.
          vs.replica->AbandonCandidacy(vs.election->epoch);
        } else {
          vs.replica->StepDown(false, vs.election->epoch);
        }
        ClearTracks(vs);
        FinishElection(vs, PromoteResult::kNoMajority, why);
      }
    }
  }
}

// ---- elections ---------------------------------------------------------------

void Engine::IoThread::StartElection(const std::string& key, bool force, uint64_t request,
                                     bool takeover) {
  auto it = vstate_.find(key);
  if (it == vstate_.end()) return;
  VolumeState& vs = it->second;
  if (vs.election) {
    // One at a time; the newer request replaces the older's report.
    vs.election->request = std::max(vs.election->request, request);
    vs.election->force = vs.election->force || force;
    return;
  }
  auto e = vs.replica->BeginCandidacy();
  if (!e.ok()) {
    spdlog::error("volume {}: {}", vs.replica->entry().name, e.status().ToString());
    vs.promote_completed = std::max(vs.promote_completed, request);
    vs.promote_result = PromoteResult::kError;
    dirty_ = true;
    return;
  }
  ClearTracks(vs);
  Election el;
  el.epoch = *e;
  el.force = force;
  el.takeover = takeover;
  el.request = request;
  el.deadline = clock_.Now() + opt_.election_timeout;
  el.self_votes = vs.replica->View().vouch || force;
  vs.election = std::move(el);
  spdlog::info("volume {}: proposing epoch {}{}", vs.replica->entry().name, *e,
               force ? " (forced)" : "");
  const VolumeView v = vs.replica->View();
  for (const std::string& h : vs.replica->entry().replicas) {
    Peer* p = FindPeer(h);
    if (p == nullptr || !p->out_session) continue;
    vs.election->asked.insert(h);
    (void)SendTo(*p, EpochPropose{vs.replica->uuid(), *e, std::min(v.content_epoch, *e - 1),
                                  v.content_seq, opt_.host_id, takeover});
  }
  dirty_ = true;
  CheckElection(key, vs);
}

void Engine::IoThread::CheckElection(const std::string& key, VolumeState& vs, bool at_deadline) {
  Election& el = *vs.election;
  if (el.adopting || el.confirming) return;
  const size_t votes = (el.self_votes ? 1 : 0) + el.accepts.size();
  const bool all_answered = el.accepts.size() + 1 >= vs.replica->entry().replicas.size();
  if (votes < vs.replica->entry().majority() && !(el.force && (all_answered || at_deadline))) {
    return;
  }
  // Adopt the freshest copy among the voters.
  const VolumeView v = vs.replica->View();
  std::pair<uint64_t, uint64_t> best{0, 0};
  std::string source;
  if (el.self_votes) best = {v.content_epoch, v.content_seq};
  for (const auto& [host, pos] : el.accepts) {
    if (pos > best) {
      best = pos;
      source = host;
    }
  }
  if (source.empty()) {
    BecomePrimary(key, vs);
    return;
  }
  Peer* p = FindPeer(source);
  if (p == nullptr) return;
  el.adopting = true;
  el.source = source;
  el.deadline = clock_.Now() + std::max<Nanos>(opt_.election_timeout, std::chrono::seconds(60));
  spdlog::info("volume {}: adopting the copy of {} (epoch {} sequence {})",
               vs.replica->entry().name, source, best.first, best.second);
  (void)SendTo(*p,
               ResyncRequest{vs.replica->uuid(), el.epoch, 0, opt_.cluster.settings.resync_chunk});
}

void Engine::IoThread::BecomePrimary(const std::string& key, VolumeState& vs) {
  (void)key;
  Election& el = *vs.election;
  const VolumeView before = vs.replica->View();
  vs.replica->BecomePrimary(el.epoch,
                            el.force && el.accepts.size() + 1 < vs.replica->entry().majority());
  const uint64_t base = vs.replica->View().content_seq;
  Follow(vs, opt_.host_id);
  el.adopting = false;
  el.confirming = true;
  el.deadline = clock_.Now() + std::max<Nanos>(opt_.election_timeout, std::chrono::seconds(60));
  ClearTracks(vs);
  for (const std::string& h : vs.replica->entry().replicas) {
    if (h == opt_.host_id) continue;
    Track t;
    const Peer* p = FindPeer(h);
    t.state = p != nullptr && p->up ? ReplicaLinkState::kOutdated : ReplicaLinkState::kDown;
    // A voter that accepted with exactly the copy this host now serves
    // (voters accept only while they vouch, and hold still once they
    // promised) needs only what changes from here: a dirty-chunk resync
    // from the base, not a full copy (a planned handover stays quick).
    auto a = el.accepts.find(h);
    if (a != el.accepts.end() && base == before.content_seq &&
        a->second == std::make_pair(before.content_epoch, before.content_seq)) {
      t.since = base;
    }
    vs.tracks.emplace(h, t);
  }
  dirty_ = true;
  // Confirmation: serving once a majority holds the adopted copy (resyncs
  // start on the next tick).
  UpdateServing(vs);
}

void Engine::IoThread::FinishElection(VolumeState& vs, PromoteResult r, std::string message) {
  if (!vs.election) return;
  spdlog::info("volume {}: election of epoch {}: {}", vs.replica->entry().name, vs.election->epoch,
               PromoteResultName(r));
  if (vs.election->request != 0) {
    vs.promote_completed = std::max(vs.promote_completed, vs.election->request);
    vs.promote_result = r;
  }
  if (message.empty() && r == PromoteResult::kSuperseded) {
    message = "another host holds a newer epoch than " + std::to_string(vs.election->epoch);
  }
  std::vector<ActivateCallback> waiters = std::move(vs.election->waiters);
  vs.election.reset();
  dirty_ = true;
  for (ActivateCallback& w : waiters) w({true, r, message});
}

void Engine::IoThread::Follow(VolumeState& vs, const std::string& host) {
  if (vs.primary_host == host) return;
  vs.primary_host = host;
  dirty_ = true;
}

bool Engine::IoThread::CatchingUp(const VolumeState& vs, const VolumeView& v) const {
  if (v.syncing_epoch != 0) return true;
  if (v.vouch || vs.primary_host.empty() || vs.primary_host == opt_.host_id) return false;
  // Behind (not vouching) while the primary it follows is reachable: that
  // primary resynchronises it shortly.
  auto it = peers_.find(vs.primary_host);
  return it != peers_.end() && it->second.out_session && it->second.up;
}

void Engine::IoThread::StartActivation(const std::string& key, bool force, ActivateCallback done,
                                       bool lease_waited) {
  auto it = vstate_.find(key);
  if (it == vstate_.end()) {
    done({true, PromoteResult::kNotReplica, "this host does not replicate volume " + key});
    return;
  }
  VolumeState& vs = it->second;
  const VolumeView v = vs.replica->View();
  if (vs.election) {
    vs.election->waiters.push_back(std::move(done));
    return;
  }
  if (vs.retry) {
    vs.retry->waiters.push_back(std::move(done));
    return;
  }
  if (v.role == Role::kPrimary) {
    if (v.serving) {
      done({true, PromoteResult::kOk, ""});
    } else {
      done({true, PromoteResult::kNoMajority,
            "primary of epoch " + std::to_string(v.epoch) + " without a majority in sync"});
    }
    return;
  }
  // The primary this host follows decides which kind of request applies:
  // a planned switch needs it reachable (it steps down when it sees the new
  // epoch); a forced one is for a primary that is gone, and must not take
  // the volume from one that is alive.
  if (!vs.primary_host.empty() && vs.primary_host != opt_.host_id) {
    const Peer* p = FindPeer(vs.primary_host);
    const bool reachable = p != nullptr && p->out_session && p->up;
    // Heard from within peer-expiry, and not silent since its connection
    // dropped (a killed process drops it at once; a destroyed domain does
    // not, and is then waited for until it expires).
    const bool alive = PrimaryAlive(p);
    if (!force && !reachable) {
      done({true, PromoteResult::kError,
            "the primary " + vs.primary_host +
                " is unreachable: fail over with force (the majority rule still applies)"});
      return;
    }
    if (force && alive && !lease_waited) {
      // The frontend (or the operator) saw it die; this host may not have
      // yet: its heartbeats expire within peer-expiry.
      const auto& st = opt_.cluster.settings;
      if (vs.deferred) {
        vs.deferred->done({true, PromoteResult::kSuperseded, "a newer activation replaced it"});
      }
      vs.deferred = DeferredActivation{
          force, std::move(done), clock_.Now(),
          clock_.Now() + milliseconds(st.peer_expiry_ms + 2 * st.heartbeat_interval_ms)};
      spdlog::info("volume {}: forced activation waits up to {} ms for the primary {} to expire",
                   vs.replica->entry().name, st.peer_expiry_ms + 2 * st.heartbeat_interval_ms,
                   vs.primary_host);
      return;
    }
    if (force && alive) {
      done({true, PromoteResult::kError,
            "the primary " + vs.primary_host +
                " is alive and reachable from here: fail over without force"});
      return;
    }
  }
  if (CatchingUp(vs, v)) {
    if (vs.deferred) {
      vs.deferred->done({true, PromoteResult::kSuperseded, "a newer activation replaced it"});
    }
    vs.deferred = DeferredActivation{force, std::move(done), clock_.Now()};
    spdlog::info("volume {}: activation waits for the resync of this host's copy",
                 vs.replica->entry().name);
    vs.deferred->done({false, PromoteResult::kOk, "waiting for the resync of this host's copy"});
    return;
  }
  StartElection(key, /*force=*/false, 0, /*takeover=*/force);
  if (vs.election && force) {
    const auto& st = opt_.cluster.settings;
    vs.election->takeover_until =
        clock_.Now() + milliseconds(st.peer_expiry_ms + 2 * st.heartbeat_interval_ms);
  }
  if (vs.election) {
    vs.election->waiters.push_back(std::move(done));
  } else {
    done({true, PromoteResult::kError, "cannot start an election (see the vnvramd log)"});
  }
}

// ---- status --------------------------------------------------------------------

void Engine::IoThread::PublishStatus(bool notify) {
  dirty_ = false;
  last_snapshot_ = clock_.Now();
  EngineStatus st;
  for (auto& [key, vs] : vstate_) {
    VolumeStatus v;
    v.entry = vs.replica->entry();
    v.view = vs.replica->View();
    v.promote_completed = vs.promote_completed;
    v.promote_result = vs.promote_result;
    using S = backend::SinkReplication::Summary;
    S summary = v.view.syncing_epoch != 0 ? S::kSyncing : v.view.vouch ? S::kInSync : S::kDegraded;
    if (v.entry.replicas.size() == 1) summary = S::kStandalone;
    if (v.view.role == Role::kPrimary && v.entry.replicas.size() > 1) {
      summary = S::kInSync;
      for (auto& [host, t] : vs.tracks) {
        if (t.state == ReplicaLinkState::kSyncing) summary = S::kSyncing;
        if ((t.state == ReplicaLinkState::kOutdated || t.state == ReplicaLinkState::kDown) &&
            summary != S::kSyncing) {
          summary = S::kDegraded;
        }
      }
    }
    vs.replica->SetSummary(summary);
    v.primary = vs.primary_host;
    if (v.view.role == Role::kPrimary || v.view.role == Role::kCandidate) {
      v.primary_link = true;
    } else if (!vs.primary_host.empty()) {
      auto pit = peers_.find(vs.primary_host);
      v.primary_link = pit != peers_.end() && pit->second.out_session && pit->second.up;
    }
    vs.replica->SetPrimaryLink(v.primary_link);
    if (v.view.role == Role::kPrimary) {
      for (auto& [host, t] : vs.tracks) {
        ReplicaStatus r;
        r.host = host;
        r.state = t.state;
        r.acked = t.acked;
        if (t.state == ReplicaLinkState::kSyncing && !t.chunks.empty()) {
          r.progress = static_cast<uint32_t>(t.next_chunk * 100 / t.chunks.size());
        } else if (t.state == ReplicaLinkState::kInSync) {
          r.progress = 100;
        }
        v.replicas.push_back(r);
      }
    }
    st.volumes.push_back(std::move(v));
  }
  for (auto& [id, p] : peers_) {
    st.peers.push_back(PeerStatus{id, p.endpoint,
                                  p.refused ? "refused"
                                  : p.up    ? "up"
                                            : "down",
                                  p.last_seen_wall_ms});
  }
  st.frames_in = frames_in_;
  st.frames_refused = frames_refused_ + (zap_ ? zap_->refused() : 0);
  {
    std::lock_guard lock(status_mu_);
    status_ = std::move(st);
  }
  if (notify && opt_.on_change) opt_.on_change();
}

// ---------------------------------------------------------------------------
// Engine.

Engine::Engine(EngineOptions options) : options_(std::move(options)) {}

Engine::~Engine() {
  (void)Shutdown();
}

Result<std::unique_ptr<Engine>> Engine::Start(EngineOptions options) {
  std::unique_ptr<Engine> e(new Engine(std::move(options)));
  for (const VolumeEntry& v : e->options_.cluster.volumes) {
    if (!v.HasReplica(e->options_.host_id)) continue;
    Engine* self = e.get();
    auto replica =
        std::make_shared<VolumeReplica>(v, e->options_.host_id, e->options_.cluster.settings,
                                        e->options_.state_dir, SystemClock::Instance(), [self] {
                                          if (self->io_) self->io_->Wake();
                                        });
    if (vnvram::Status s = replica->Load(); !s.ok()) {
      return s.WithContext("volume " + v.name);
    }
    e->volumes_.emplace(v.uuid.ToString(), std::move(replica));
  }
  e->io_ = std::make_unique<IoThread>(e->options_, e->volumes_);
  VNVRAM_RETURN_IF_ERROR(e->io_->Open(&e->bound_));
  e->io_->Start();
  spdlog::info("replication: host {} bound {}", e->options_.host_id, e->bound_);
  return e;
}

std::shared_ptr<VolumeReplica> Engine::Find(const Uuid& uuid) const {
  auto it = volumes_.find(uuid.ToString());
  return it == volumes_.end() ? nullptr : it->second;
}

Result<std::unique_ptr<backend::PersistSink>> Engine::AttachRegion(const Uuid& uuid,
                                                                   std::span<std::byte> region) {
  auto v = Find(uuid);
  if (!v) return vnvram::Status::NotFound("volume " + uuid.ToString() + " is not replicated here");
  if (region.size() != v->entry().size) {
    return vnvram::Status::InvalidArgument(
        "volume " + v->entry().name + " is " + std::to_string(v->entry().size) +
        " bytes in the cluster file, not " + std::to_string(region.size()));
  }
  return std::unique_ptr<backend::PersistSink>(
      new ReplicatingPersistSink(v, region, options_.persist_timeout, options_.persist_spin));
}

void Engine::Promote(const Uuid& uuid, bool force, uint64_t request) {
  const std::string key = uuid.ToString();
  if (!io_ || shut_down_) return;
  io_->Post([this, key, force, request] { io_->StartElection(key, force, request); });
}

void Engine::Activate(const Uuid& uuid, bool force, ActivateCallback done) {
  const std::string key = uuid.ToString();
  if (!io_ || shut_down_) {
    done({true, PromoteResult::kError, "vnvramd is shutting down"});
    return;
  }
  io_->Post([this, key, force, done = std::move(done)]() mutable {
    io_->StartActivation(key, force, std::move(done));
  });
}

EngineStatus Engine::GetStatus() const {
  EngineStatus st = io_ ? io_->Snapshot() : EngineStatus{};
  // Views are read fresh; the rest is the I/O thread's last snapshot.
  for (VolumeStatus& v : st.volumes) {
    if (auto r = Find(v.entry.uuid)) v.view = r->View();
  }
  return st;
}

vnvram::Status Engine::VaultAll(bool only_changed) {
  vnvram::Status first;
  for (auto& [key, v] : volumes_) {
    if (only_changed && v->vault_current()) continue;
    vnvram::Status s = v->Vault(/*clean=*/false);
    if (!s.ok()) {
      spdlog::error("{}", s.ToString());
      if (first.ok()) first = s;
    }
  }
  return first;
}

vnvram::Status Engine::Shutdown() {
  if (shut_down_) return vnvram::Status::Ok();
  shut_down_ = true;
  if (io_) io_->Stop();
  vnvram::Status first;
  for (auto& [key, v] : volumes_) {
    vnvram::Status s = v->Vault(/*clean=*/true);
    if (!s.ok() && first.ok()) first = s;
  }
  io_.reset();
  return first;
}

}  // namespace vnvram::replication
