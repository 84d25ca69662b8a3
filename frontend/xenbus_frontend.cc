#include "frontend/xenbus_frontend.h"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <utility>

namespace vnvram::frontend {
namespace {

namespace fe = schema::fe;
namespace be = schema::be;

constexpr std::string_view kWatchToken = "vnvram:be";

std::string StateName(XenbusState s) {
  return std::string(schema::XenbusStateName(s));
}

// The ABI name of this build's ring layout (vnvramif's layout is the same
// on all of them; the key is kept for blkif-style tools).
std::optional<std::string_view> NativeProtocol() {
#if defined(__x86_64__)
  return fe::kProtocolX86_64Abi;
#elif defined(__i386__)
  return fe::kProtocolX86_32Abi;
#elif defined(__arm__) || defined(__aarch64__)
  return fe::kProtocolArmAbi;
#else
  return std::nullopt;
#endif
}

}  // namespace

Connection::~Connection() {
  ring.reset();
  if (evtchn != nullptr && port != 0) (void)evtchn->Unbind(port);
  ring_pages.reset();
  region = MappedRegion{};
}

XenbusFrontend::XenbusFrontend(DomId self, DevId dev, std::unique_ptr<platform::XenStore> xs,
                               std::unique_ptr<platform::GrantSharer> sharer,
                               std::unique_ptr<platform::GrantMapper> mapper,
                               std::unique_ptr<platform::EventChannels> evtchn)
    : self_(self),
      dev_(dev),
      xs_(std::move(xs)),
      sharer_(std::move(sharer)),
      mapper_(std::move(mapper)),
      evtchn_(std::move(evtchn)),
      log_("dom " + std::to_string(self) + " dev " + std::to_string(dev)) {}

XenbusFrontend::~XenbusFrontend() {
  for (const std::string& p : watch_paths_) (void)xs_->Unwatch(p, kWatchToken);
}

std::string XenbusFrontend::FeKey(std::string_view key) const {
  return schema::FrontendKey(self_, dev_, key);
}

std::string XenbusFrontend::BeKey(std::string_view key) const {
  return schema::BackendKey(backend_, self_, dev_, key);
}

Result<std::unique_ptr<XenbusFrontend>> XenbusFrontend::Open(platform::Platform& platform,
                                                             DevId dev) {
  VNVRAM_ASSIGN_OR_RETURN(auto xs, platform.OpenXenStore());
  VNVRAM_ASSIGN_OR_RETURN(auto sharer, platform.OpenGrantSharer());
  VNVRAM_ASSIGN_OR_RETURN(auto mapper, platform.OpenGrantMapper());
  VNVRAM_ASSIGN_OR_RETURN(auto evtchn, platform.OpenEventChannels());
  std::unique_ptr<XenbusFrontend> x(new XenbusFrontend(platform.self_domid(), dev, std::move(xs),
                                                       std::move(sharer), std::move(mapper),
                                                       std::move(evtchn)));
  VNVRAM_RETURN_IF_ERROR(x->ReadIdentity());
  // The backend keys the frontend acts on; not the whole directory, whose
  // statistics change every second.
  for (std::string_view k : {be::kState, be::kOnline, be::kRole, be::kPrimaryLink, be::kActivated,
                             be::kActivateResult}) {
    const std::string path = x->BeKey(k);
    VNVRAM_RETURN_IF_ERROR(x->xs_->Watch(path, kWatchToken));
    x->watch_paths_.push_back(path);
  }
  return x;
}

Result<DevId> XenbusFrontend::FindDeviceByVolume(platform::Platform& platform, const Uuid& volume) {
  VNVRAM_ASSIGN_OR_RETURN(auto xs, platform.OpenXenStore());
  const DomId self = platform.self_domid();
  auto devs = xs->Directory(platform::kNoTx, schema::FrontendRoot(self));
  if (!devs.ok() && devs.status().code() != Code::kNotFound) return devs.status();
  std::optional<DevId> best;
  if (devs.ok()) {
    for (const std::string& name : *devs) {
      auto dev = ParseDevId(name, "device id");
      if (!dev.ok()) continue;  // not a device directory: not ours to judge
      auto v = xs->Read(platform::kNoTx, schema::FrontendKey(self, *dev, fe::kVolume));
      if (!v.ok()) continue;
      auto u = ParseUuid(*v, fe::kVolume);
      if (u.ok() && *u == volume && (!best || *dev < *best)) best = *dev;
    }
  }
  if (!best) {
    return Status::NotFound("no vnvram device of volume " + volume.ToString() + " in domain " +
                            std::to_string(self));
  }
  return *best;
}

Result<std::vector<DevId>> XenbusFrontend::FindDevicesByVolume(platform::XenStore& xs, DomId self,
                                                               const Uuid& volume) {
  std::vector<DevId> out;
  auto devs = xs.Directory(platform::kNoTx, schema::FrontendRoot(self));
  if (!devs.ok()) {
    if (devs.status().code() == Code::kNotFound) return out;
    return devs.status();
  }
  for (const std::string& name : *devs) {
    auto dev = ParseDevId(name, "device id");
    if (!dev.ok()) continue;
    auto v = xs.Read(platform::kNoTx, schema::FrontendKey(self, *dev, fe::kVolume));
    if (!v.ok()) continue;
    auto u = ParseUuid(*v, fe::kVolume);
    if (u.ok() && *u == volume) out.push_back(*dev);
  }
  std::sort(out.begin(), out.end());
  return out;
}

Status XenbusFrontend::ReadIdentity() {
  const std::string dir = schema::FrontendDir(self_, dev_);
  auto bid = xs_->Read(platform::kNoTx, FeKey(fe::kBackendId));
  if (!bid.ok()) {
    if (bid.status().code() == Code::kNotFound) {
      return Status::NotFound("no vnvram device " + std::to_string(dev_) + " in domain " +
                              std::to_string(self_) + " (" + dir + " has no " +
                              std::string(fe::kBackendId) + ")");
    }
    return bid.status().WithContext("reading " + dir);
  }
  auto b = ParseDomId(*bid, fe::kBackendId);
  if (!b.ok()) return Status::Corruption(b.status().message()).WithContext(dir);
  backend_ = *b;
  auto path = xs_->Read(platform::kNoTx, FeKey(fe::kBackend));
  if (!path.ok()) return path.status().WithContext("reading " + dir);
  const std::string want = schema::BackendDir(backend_, self_, dev_);
  if (*path != want) {
    return Status::Corruption(dir + ": " + std::string(fe::kBackend) + " is '" + *path +
                              "', expected '" + want + "'");
  }
  auto vol = xs_->Read(platform::kNoTx, FeKey(fe::kVolume));
  if (!vol.ok()) return vol.status().WithContext("reading " + dir);
  auto uuid = ParseUuid(*vol, fe::kVolume);
  if (!uuid.ok()) return Status::Corruption(uuid.status().message()).WithContext(dir);
  volume_ = *uuid;
  if (auto pr = xs_->Read(platform::kNoTx, FeKey(fe::kPathPriority)); pr.ok()) {
    auto n = ParseU64InRange(*pr, fe::kPathPriorityMin, fe::kPathPriorityMax, fe::kPathPriority);
    if (n.ok()) {
      priority_ = static_cast<uint32_t>(*n);
    } else {
      log_.Warn("{}: {}; using 0", dir, n.status().message());
    }
  }
  auto st = xs_->Read(platform::kNoTx, FeKey(fe::kState));
  if (st.ok()) {
    auto s = schema::ParseXenbusState(*st);
    state_ = s.ok() ? *s : XenbusState::kUnknown;
  }
  return Status::Ok();
}

Status XenbusFrontend::SetState(XenbusState s) {
  // In a transaction with a read of the node, so that a directory the
  // toolstack removed meanwhile (detach) is never re-created by us.
  Status w = platform::RunTransaction(*xs_, [&](platform::TxId tx) {
    auto cur = xs_->Read(tx, FeKey(fe::kState));
    if (!cur.ok()) return cur.status();
    return xs_->Write(tx, FeKey(fe::kState), schema::XenbusStateValue(s));
  });
  if (!w.ok()) {
    if (w.code() == Code::kNotFound) {
      return Status::Unavailable("device directory " + schema::FrontendDir(self_, dev_) +
                                 " is gone (detached)");
    }
    return w.WithContext("writing the frontend state");
  }
  if (state_ != s) log_.Debug("frontend {} -> {}", StateName(state_), StateName(s));
  state_ = s;
  return Status::Ok();
}

void XenbusFrontend::ReportFatal(const Status& why) {
  std::string msg = why.ToString();
  if (msg.size() > fe::kErrorMaxLen) msg.resize(fe::kErrorMaxLen);
  log_.Error("fatal device error: {}", msg);
  Status s = platform::RunTransaction(*xs_, [&](platform::TxId tx) {
    auto cur = xs_->Read(tx, FeKey(fe::kState));  // never re-create a removed directory
    if (!cur.ok()) return cur.status();
    VNVRAM_RETURN_IF_ERROR(xs_->Write(tx, FeKey(fe::kError), msg));
    return xs_->Write(tx, FeKey(fe::kState), schema::XenbusStateValue(XenbusState::kClosing));
  });
  if (s.ok()) {
    state_ = XenbusState::kClosing;
  } else {
    log_.Warn("cannot report the error in xenstore: {}", s.ToString());
  }
}

Result<XenbusState> XenbusFrontend::BackendState() {
  auto v = xs_->Read(platform::kNoTx, BeKey(be::kState));
  if (!v.ok()) {
    // A removed directory reads as EACCES when its nearest ancestor is not
    // ours to read (xenstored's rule): gone either way.
    if (v.status().code() == Code::kNotFound || v.status().code() == Code::kPermissionDenied) {
      return XenbusState::kUnknown;
    }
    return v.status();
  }
  auto s = schema::ParseXenbusState(*v);
  if (!s.ok()) return Status::Corruption("backend state: " + s.status().message());
  return *s;
}

Result<bool> XenbusFrontend::BackendOnline() {
  auto v = xs_->Read(platform::kNoTx, BeKey(be::kOnline));
  if (!v.ok()) {
    if (v.status().code() == Code::kNotFound || v.status().code() == Code::kPermissionDenied) {
      return false;
    }
    return v.status();
  }
  auto b = ParseBool01(*v, be::kOnline);
  if (!b.ok()) return Status::Corruption(b.status().message());
  return *b;
}

std::string XenbusFrontend::BackendError() {
  auto v = xs_->Read(platform::kNoTx, BeKey(be::kError));
  if (!v.ok()) return "";
  std::string s = *v;
  if (s.size() > be::kErrorMaxLen) s.resize(be::kErrorMaxLen);
  for (char& c : s) {
    if (c < 0x20 || c == 0x7f) c = '?';  // one printable line, whatever it sent
  }
  return s;
}

Status XenbusFrontend::DrainWatches(bool* fired) {
  for (;;) {
    auto ev = xs_->ReadWatch();
    if (!ev.ok()) return ev.status().WithContext("reading xenstore watch events");
    if (!ev->has_value()) return Status::Ok();
    *fired = true;
  }
}

Result<bool> XenbusFrontend::TakeEvent(Connection* conn) {
  bool event = false;
  for (;;) {
    auto p = evtchn_->Pending();
    if (!p.ok()) return p.status().WithContext("reading pending events");
    if (!p->has_value()) break;
    if (conn != nullptr && **p == conn->port) event = true;
    (void)evtchn_->Unmask(**p);
  }
  return event;
}

Result<std::optional<std::string>> XenbusFrontend::ReadBackendKey(std::string_view key) {
  auto v = xs_->Read(platform::kNoTx, BeKey(key));
  if (v.ok()) return std::optional<std::string>(std::move(v).value());
  if (v.status().code() == Code::kNotFound || v.status().code() == Code::kPermissionDenied) {
    return std::optional<std::string>();
  }
  return v.status();
}

Result<std::optional<std::string>> XenbusFrontend::ReadFrontendKey(std::string_view key) {
  auto v = xs_->Read(platform::kNoTx, FeKey(key));
  if (v.ok()) return std::optional<std::string>(std::move(v).value());
  if (v.status().code() == Code::kNotFound) return std::optional<std::string>();
  return v.status();
}

Status XenbusFrontend::WriteFrontendKeys(
    const std::vector<std::pair<std::string_view, std::string>>& kv) {
  Status w = platform::RunTransaction(*xs_, [&](platform::TxId tx) {
    auto cur = xs_->Read(tx, FeKey(fe::kState));  // never re-create a removed directory
    if (!cur.ok()) return cur.status();
    for (const auto& [k, v] : kv) VNVRAM_RETURN_IF_ERROR(xs_->Write(tx, FeKey(k), v));
    return Status::Ok();
  });
  if (w.code() == Code::kNotFound) {
    return Status::Unavailable("device directory " + schema::FrontendDir(self_, dev_) +
                               " is gone (detached)");
  }
  return w;
}

Result<Activity> XenbusFrontend::WaitForActivity(Connection* conn, const Deadline& deadline) {
  Activity a;
  for (;;) {
    VNVRAM_RETURN_IF_ERROR(DrainWatches(&a.watch));
    if (conn != nullptr) {
      VNVRAM_ASSIGN_OR_RETURN(const bool ev, TakeEvent(conn));
      a.event = a.event || ev;
    }
    if (a.event || a.watch || deadline.Expired()) return a;
    pollfd fds[2] = {{xs_->WatchFd(), POLLIN, 0}, {evtchn_->Fd(), POLLIN, 0}};
    const int n = poll(fds, conn != nullptr ? 2 : 1, deadline.RemainingMillisForPoll());
    if (n < 0 && errno != EINTR) return Status::FromErrno(errno, "poll");
    if (n == 0) return a;
  }
}

Status XenbusFrontend::WaitForInitWait(const Deadline& deadline) {
  XenbusState be = XenbusState::kUnknown;
  int dances = 0;  // Closing -> Closed -> Initialising rounds we started
  for (;;) {
    VNVRAM_ASSIGN_OR_RETURN(const bool online, BackendOnline());
    VNVRAM_ASSIGN_OR_RETURN(be, BackendState());
    if (!online && be != XenbusState::kUnknown) {
      return Status::Unavailable("device is offline (online = 0): being detached");
    }
    switch (be) {
      case XenbusState::kInitWait: return Status::Ok();
      case XenbusState::kClosing:
        // The backend closes only after we are Closed (blkif's dance);
        // then it goes Closed and sets up again when we re-initialise. An
        // error it reports again after one such round is its answer.
        if (state_ != XenbusState::kClosed) {
          if (dances > 0) {
            const std::string err = BackendError();
            if (!err.empty()) return Status::Unavailable("backend failed the device: " + err);
          }
          ++dances;
          VNVRAM_RETURN_IF_ERROR(SetState(XenbusState::kClosed));
        }
        break;
      case XenbusState::kClosed:
        if (state_ != XenbusState::kInitialising) {
          VNVRAM_RETURN_IF_ERROR(SetState(XenbusState::kInitialising));
        }
        break;
      default:
        // Initialising: the backend is setting up. Connected/Initialised:
        // it still serves an earlier incarnation of ours and will drop it
        // on seeing our Initialising. Unknown: not there yet.
        break;
    }
    auto a = WaitForActivity(nullptr, deadline);
    if (!a.ok()) return a.status();
    if (deadline.Expired()) break;
  }
  return Status::Timeout("backend did not reach InitWait (last seen " + StateName(be) + ")");
}

Result<std::unique_ptr<Connection>> XenbusFrontend::Publish(const BackendGeometry& g,
                                                            uint32_t want_order) {
  auto conn = std::make_unique<Connection>();
  conn->evtchn = evtchn_.get();
  conn->geometry = g;
  VNVRAM_ASSIGN_OR_RETURN(conn->region, MapRegion(*mapper_, backend_, g, /*writable=*/true));
  conn->ring_page_order = std::min(want_order, g.max_ring_page_order);
  const size_t pages = size_t{1} << conn->ring_page_order;
  auto ring_pages = sharer_->Share(backend_, pages, /*writable=*/true);
  if (!ring_pages.ok()) return ring_pages.status().WithContext("granting the ring");
  conn->ring_pages = std::move(ring_pages).value();
  auto port = evtchn_->BindUnbound(backend_);
  if (!port.ok()) return port.status().WithContext("allocating the event channel");
  conn->port = *port;
  platform::EventChannels* ev = evtchn_.get();
  const platform::EvtchnPort p = conn->port;
  VNVRAM_ASSIGN_OR_RETURN(
      conn->ring, RingClient::Create(conn->ring_pages->data().first(pages * VNVRAMIF_PAGE_SIZE),
                                     [ev, p] { (void)ev->Notify(p); }));
  const std::span<const platform::GrantRef> refs = conn->ring_pages->refs();
  if (refs.size() != pages) return Status::Internal("ring share returned the wrong ref count");

  Status s = platform::RunTransaction(*xs_, [&](platform::TxId tx) {
    // Keys an earlier incarnation may have left with another ring order.
    VNVRAM_RETURN_IF_ERROR(xs_->Remove(tx, FeKey(fe::kRingRef)));
    for (uint32_t i = 0; i < VNVRAMIF_MAX_RING_PAGES; ++i) {
      VNVRAM_RETURN_IF_ERROR(xs_->Remove(tx, FeKey(fe::RingRefN(i))));
    }
    VNVRAM_RETURN_IF_ERROR(xs_->Remove(tx, FeKey(fe::kError)));
    VNVRAM_RETURN_IF_ERROR(
        xs_->Write(tx, FeKey(fe::kRingPageOrder), std::to_string(conn->ring_page_order)));
    if (conn->ring_page_order == 0) {
      VNVRAM_RETURN_IF_ERROR(xs_->Write(tx, FeKey(fe::kRingRef), std::to_string(refs[0])));
    } else {
      for (size_t i = 0; i < refs.size(); ++i) {
        VNVRAM_RETURN_IF_ERROR(
            xs_->Write(tx, FeKey(fe::RingRefN(static_cast<uint32_t>(i))), std::to_string(refs[i])));
      }
    }
    VNVRAM_RETURN_IF_ERROR(xs_->Write(tx, FeKey(fe::kEventChannel), std::to_string(conn->port)));
    // Which publication of the backend's region this answers.
    if (g.handshake) {
      VNVRAM_RETURN_IF_ERROR(
          xs_->Write(tx, FeKey(fe::kBackendHandshake), std::to_string(*g.handshake)));
    } else {
      VNVRAM_RETURN_IF_ERROR(xs_->Remove(tx, FeKey(fe::kBackendHandshake)));
    }
    if (auto proto = NativeProtocol()) {
      VNVRAM_RETURN_IF_ERROR(xs_->Write(tx, FeKey(fe::kProtocol), *proto));
    }
    return xs_->Write(tx, FeKey(fe::kState), schema::XenbusStateValue(XenbusState::kInitialised));
  });
  if (!s.ok()) return s.WithContext("publishing the ring");
  state_ = XenbusState::kInitialised;
  return conn;
}

Status XenbusFrontend::WaitForConnected(const Deadline& deadline,
                                        const std::optional<uint64_t>& handshake, bool* refused) {
  *refused = false;
  XenbusState be = XenbusState::kUnknown;
  for (;;) {
    VNVRAM_ASSIGN_OR_RETURN(const bool online, BackendOnline());
    VNVRAM_ASSIGN_OR_RETURN(be, BackendState());
    if (!online && be != XenbusState::kUnknown) {
      return Status::Unavailable("device went offline (online = 0) during the handshake");
    }
    if (handshake && (be == XenbusState::kInitWait || be == XenbusState::kConnected)) {
      // The region we mapped must still be the one the backend publishes.
      VNVRAM_ASSIGN_OR_RETURN(auto now, ReadBackendKey(be::kHandshake));
      if (now && *now != std::to_string(*handshake)) {
        return Status::Aborted("the backend published its region again (handshake " +
                               QuoteForError(*now, 40) + ", we mapped " +
                               std::to_string(*handshake) + "): an earlier instance died");
      }
    }
    if (be == XenbusState::kConnected) return Status::Ok();
    if (be == XenbusState::kClosing || be == XenbusState::kClosed) {
      *refused = true;
      const std::string err = BackendError();
      return Status::Unavailable("backend went " + StateName(be) + " during the handshake" +
                                 (err.empty() ? std::string() : ": " + err));
    }
    auto a = WaitForActivity(nullptr, deadline);
    if (!a.ok()) return a.status();
    if (deadline.Expired()) break;
  }
  return Status::Timeout("backend did not reach Connected (last seen " + StateName(be) + ")");
}

Result<std::unique_ptr<Connection>> XenbusFrontend::Connect(uint32_t want_order,
                                                            const Deadline& deadline) {
  // Start over whatever an earlier incarnation left: Closing must become
  // Closed first (the only way out of Closing), then Initialising.
  if (state_ == XenbusState::kClosing) VNVRAM_RETURN_IF_ERROR(SetState(XenbusState::kClosed));
  VNVRAM_RETURN_IF_ERROR(SetState(XenbusState::kInitialising));
  int refusals = 0;  // handshakes the backend failed after our Initialised
  for (;;) {
    VNVRAM_RETURN_IF_ERROR(WaitForInitWait(deadline));
    // Read the published keys and the state in one transaction, so they
    // belong to the same InitWait.
    BackendGeometry g;
    bool still_initwait = false;
    Status s = platform::RunTransaction(*xs_, [&](platform::TxId tx) {
      auto st = xs_->Read(tx, BeKey(be::kState));
      if (!st.ok()) return st.status();
      auto parsed = schema::ParseXenbusState(*st);
      still_initwait = parsed.ok() && *parsed == XenbusState::kInitWait;
      if (!still_initwait) return Status::Ok();
      auto geo = ReadBackendGeometry(*xs_, tx, backend_, self_, dev_);
      if (!geo.ok()) return geo.status();
      g = std::move(geo).value();
      return Status::Ok();
    });
    if (!s.ok()) return s;
    if (!still_initwait) {
      if (deadline.Expired()) return Status::Timeout("backend left InitWait while we read it");
      continue;
    }
    VNVRAM_ASSIGN_OR_RETURN(auto conn, Publish(g, want_order));
    bool refused = false;
    if (Status w = WaitForConnected(deadline, g.handshake, &refused); !w.ok()) {
      // Withdraw Initialised before the ring's grants go with `conn`, so
      // a backend that maps them late sees why they are gone.
      (void)SetState(XenbusState::kInitialising);
      if (w.code() == Code::kAborted && !deadline.Expired()) {
        // We mapped a dead instance's region: map the new one.
        log_.Info("{}; handshaking again", w.message());
        continue;
      }
      // The failure may not be ours: an earlier incarnation killed between
      // publishing its ring and the backend mapping it leaves Initialised
      // with refs that are gone, and the backend, reading them after our
      // InitWait check, fails the device. One more round (Closed, then
      // Initialising) with our own ring; a second refusal is its answer.
      if (refused && refusals == 0 && !deadline.Expired()) {
        ++refusals;
        log_.Info("backend refused the handshake ({}); trying once more", w.ToString());
        VNVRAM_RETURN_IF_ERROR(SetState(XenbusState::kClosed));
        continue;
      }
      return w;
    }
    VNVRAM_RETURN_IF_ERROR(SetState(XenbusState::kConnected));
    log_.Debug("connected to backend dom {}: region {} bytes, ring order {}, port {}", backend_,
               g.region_size, conn->ring_page_order, conn->port);
    return conn;
  }
}

Status XenbusFrontend::Close(const Deadline& deadline, const std::function<void()>& release,
                             bool wait_for_backend) {
  Status result;
  if (state_ != XenbusState::kClosed) {
    Status s = SetState(XenbusState::kClosing);
    if (!s.ok() && s.code() != Code::kUnavailable) result = s;
    for (; wait_for_backend && s.ok();) {
      auto be = BackendState();
      if (!be.ok()) break;
      if (*be == XenbusState::kClosing || *be == XenbusState::kClosed ||
          *be == XenbusState::kUnknown) {
        break;
      }
      auto online = BackendOnline();
      if (online.ok() && !*online) break;
      if (deadline.Expired()) {
        result =
            Status::Timeout("backend did not acknowledge Closing (still " + StateName(*be) + ")");
        break;
      }
      auto a = WaitForActivity(nullptr, deadline);
      if (!a.ok()) break;
    }
  }
  if (release) release();
  // The directory may be gone already (detached): nothing left to tell.
  Status s = SetState(XenbusState::kClosed);
  if (!s.ok() && s.code() != Code::kUnavailable && result.ok()) result = s;
  state_ = XenbusState::kClosed;
  return result;
}

}  // namespace vnvram::frontend
