#include "tools/nvram-tool/toolstack.h"

#include <poll.h>

#include <algorithm>
#include <cerrno>

#include "common/clock.h"
#include "xenstore-schema/schema.h"

namespace vnvram::tools {
namespace {

namespace fe = schema::fe;
namespace be = schema::be;
using schema::XenbusState;

constexpr std::string_view kDetachToken = "nvram-tool:detach";

Result<bool> Exists(platform::XenStore& xs, platform::TxId tx, const std::string& path) {
  auto r = xs.Read(tx, path);
  if (r.ok()) return true;
  if (r.status().code() == Code::kNotFound) return false;
  return r.status();
}

// Removes `path` when it exists and has no children.
Status RemoveIfEmpty(platform::XenStore& xs, platform::TxId tx, const std::string& path) {
  auto kids = xs.Directory(tx, path);
  if (!kids.ok()) return kids.status().code() == Code::kNotFound ? Status::Ok() : kids.status();
  if (!kids->empty()) return Status::Ok();
  return xs.Remove(tx, path);
}

// Creates `dir` owned by `owner` (others none) unless it exists.
Status EnsureDir(platform::XenStore& xs, platform::TxId tx, const std::string& dir, DomId owner) {
  VNVRAM_ASSIGN_OR_RETURN(const bool exists, Exists(xs, tx, dir));
  if (exists) return Status::Ok();
  VNVRAM_RETURN_IF_ERROR(xs.Mkdir(tx, dir));
  const std::vector<platform::PermEntry> perms = {{owner, platform::Perm::kNone}};
  return xs.SetPermissions(tx, dir, perms);
}

std::string StateOf(platform::XenStore& xs, const std::string& path) {
  auto v = xs.Read(platform::kNoTx, path);
  if (!v.ok()) return v.status().code() == Code::kNotFound ? "-" : "?";
  auto s = schema::ParseXenbusState(*v);
  return s.ok() ? std::string(schema::XenbusStateName(*s)) : "?";
}

}  // namespace

Status Attach(platform::XenStore& xs, const AttachSpec& d) {
  if (d.frontend == d.backend) {
    return Status::InvalidArgument("frontend and backend domain are both " +
                                   std::to_string(d.frontend));
  }
  if (d.size < be::kSizeMin || d.size > be::kSizeMax || d.size % be::kSizeMultipleOf != 0) {
    return Status::InvalidArgument("size " + std::to_string(d.size) +
                                   ": must be a multiple of 4096 in [4K, 1G]");
  }
  if (d.volume.IsNil()) return Status::InvalidArgument("volume UUID must not be nil");
  if (d.priority && *d.priority > fe::kPathPriorityMax) {
    return Status::InvalidArgument("priority " + std::to_string(*d.priority) + ": expected 0.." +
                                   std::to_string(fe::kPathPriorityMax));
  }
  const std::string fdir = schema::FrontendDir(d.frontend, d.dev);
  const std::string bdir = schema::BackendDir(d.backend, d.frontend, d.dev);
  const std::vector<platform::PermEntry> fperms = {{d.frontend, platform::Perm::kNone},
                                                   {d.backend, platform::Perm::kRead}};
  const std::vector<platform::PermEntry> bperms = {{d.backend, platform::Perm::kNone},
                                                   {d.frontend, platform::Perm::kRead}};
  const std::string init(schema::XenbusStateValue(XenbusState::kInitialising));
  return platform::RunTransaction(xs, [&](platform::TxId tx) -> Status {
    for (const std::string& dir : {fdir, bdir}) {
      VNVRAM_ASSIGN_OR_RETURN(const bool exists, Exists(xs, tx, dir));
      if (exists) return Status::AlreadyExists(dir + " already exists");
    }
    // Every node carries its directory's permissions (xenstored would make
    // dom0-written nodes dom0's otherwise).
    auto fput = [&](std::string_view k, const std::string& v) -> Status {
      const std::string p = schema::FrontendKey(d.frontend, d.dev, k);
      VNVRAM_RETURN_IF_ERROR(xs.Write(tx, p, v));
      return xs.SetPermissions(tx, p, fperms);
    };
    auto bput = [&](std::string_view k, const std::string& v) -> Status {
      const std::string p = schema::BackendKey(d.backend, d.frontend, d.dev, k);
      VNVRAM_RETURN_IF_ERROR(xs.Write(tx, p, v));
      return xs.SetPermissions(tx, p, bperms);
    };
    VNVRAM_RETURN_IF_ERROR(xs.Mkdir(tx, fdir));
    VNVRAM_RETURN_IF_ERROR(xs.SetPermissions(tx, fdir, fperms));
    VNVRAM_RETURN_IF_ERROR(fput(fe::kBackend, bdir));
    VNVRAM_RETURN_IF_ERROR(fput(fe::kBackendId, std::to_string(d.backend)));
    VNVRAM_RETURN_IF_ERROR(fput(fe::kVolume, d.volume.ToString()));
    VNVRAM_RETURN_IF_ERROR(fput(fe::kState, init));
    if (d.priority) {
      VNVRAM_RETURN_IF_ERROR(fput(fe::kPathPriority, std::to_string(*d.priority)));
    }
    VNVRAM_RETURN_IF_ERROR(xs.Mkdir(tx, bdir));
    VNVRAM_RETURN_IF_ERROR(xs.SetPermissions(tx, bdir, bperms));
    VNVRAM_RETURN_IF_ERROR(bput(be::kFrontend, fdir));
    VNVRAM_RETURN_IF_ERROR(bput(be::kFrontendId, std::to_string(d.frontend)));
    VNVRAM_RETURN_IF_ERROR(bput(be::kOnline, "1"));
    VNVRAM_RETURN_IF_ERROR(bput(be::kVolume, d.volume.ToString()));
    VNVRAM_RETURN_IF_ERROR(bput(be::kSize, std::to_string(d.size)));
    VNVRAM_RETURN_IF_ERROR(bput(be::kState, init));
    // Multipath: the guest publishes its view of the volume (and takes
    // operator failover requests) in a directory only the toolstack can
    // create; likewise the backend domain's daemon and replication keys.
    VNVRAM_RETURN_IF_ERROR(EnsureDir(xs, tx, schema::DomainVnvramDir(d.frontend), d.frontend));
    VNVRAM_RETURN_IF_ERROR(EnsureDir(xs, tx, MultipathRoot(d.frontend), d.frontend));
    VNVRAM_RETURN_IF_ERROR(
        EnsureDir(xs, tx, schema::MultipathDir(d.frontend, d.volume), d.frontend));
    return EnsureDir(xs, tx, schema::DomainVnvramDir(d.backend), d.backend);
  });
}

Status Detach(platform::XenStore& xs, DomId frontend, DevId dev, const DetachOptions& options) {
  const std::string fdir = schema::FrontendDir(frontend, dev);
  auto bid = xs.Read(platform::kNoTx, schema::FrontendKey(frontend, dev, fe::kBackendId));
  if (!bid.ok()) {
    if (bid.status().code() == Code::kNotFound) {
      return Status::NotFound("no vnvram device " + std::to_string(dev) + " in domain " +
                              std::to_string(frontend));
    }
    return bid.status();
  }
  auto b = ParseDomId(*bid, fe::kBackendId);
  if (!b.ok()) return b.status().WithContext(fdir);
  const DomId backend = *b;
  const std::string bdir = schema::BackendDir(backend, frontend, dev);
  const std::string state_path = schema::BackendKey(backend, frontend, dev, be::kState);

  VNVRAM_RETURN_IF_ERROR(xs.Watch(state_path, kDetachToken));
  Status s = platform::RunTransaction(xs, [&](platform::TxId tx) -> Status {
    VNVRAM_ASSIGN_OR_RETURN(const bool exists, Exists(xs, tx, bdir));
    if (!exists) return Status::Ok();  // half-removed earlier: just clean up
    VNVRAM_RETURN_IF_ERROR(
        xs.Write(tx, schema::BackendKey(backend, frontend, dev, be::kOnline), "0"));
    // As libxl: a backend already Closed has nothing to close; writing
    // Closing over it would leave it waiting for a dance that never comes.
    auto cur = xs.Read(tx, state_path);
    if (cur.ok()) {
      auto st = schema::ParseXenbusState(*cur);
      if (st.ok() && *st == XenbusState::kClosed) return Status::Ok();
    }
    return xs.Write(tx, state_path, schema::XenbusStateValue(XenbusState::kClosing));
  });
  Status waited;
  if (s.ok()) {
    Deadline dl(SystemClock::Instance(), options.timeout);
    std::string last = "?";
    for (;;) {
      auto v = xs.Read(platform::kNoTx, state_path);
      if (!v.ok() && v.status().code() == Code::kNotFound) break;  // gone already
      if (v.ok()) {
        auto st = schema::ParseXenbusState(*v);
        last = st.ok() ? std::string(schema::XenbusStateName(*st)) : *v;
        if (st.ok() && *st == XenbusState::kClosed) break;
      }
      if (dl.Expired()) {
        waited =
            Status::Timeout("backend of device " + std::to_string(dev) + " of domain " +
                            std::to_string(frontend) + " did not close within " +
                            std::to_string(options.timeout.count()) + " ms (state " + last + ")");
        break;
      }
      pollfd pfd{xs.WatchFd(), POLLIN, 0};
      const int n = poll(&pfd, 1, dl.RemainingMillisForPoll());
      if (n < 0 && errno != EINTR) {
        waited = Status::FromErrno(errno, "poll");
        break;
      }
      for (;;) {  // drain; we re-read the state anyway
        auto ev = xs.ReadWatch();
        if (!ev.ok() || !ev->has_value()) break;
      }
    }
  }
  (void)xs.Unwatch(state_path, kDetachToken);
  if (!s.ok()) return s;
  if (!waited.ok() && !options.force) return waited.WithContext("not removed (use --force)");
  return platform::RunTransaction(xs, [&](platform::TxId tx) -> Status {
    std::optional<Uuid> volume;
    if (auto v = xs.Read(tx, schema::FrontendKey(frontend, dev, fe::kVolume)); v.ok()) {
      if (auto u = ParseUuid(*v); u.ok()) volume = *u;
    }
    VNVRAM_RETURN_IF_ERROR(xs.Remove(tx, bdir));
    VNVRAM_RETURN_IF_ERROR(xs.Remove(tx, fdir));
    VNVRAM_RETURN_IF_ERROR(RemoveIfEmpty(xs, tx, schema::BackendFrontendDir(backend, frontend)));
    VNVRAM_RETURN_IF_ERROR(RemoveIfEmpty(xs, tx, schema::BackendRoot(backend)));
    // The volume's multipath directory goes with its last path in F.
    if (volume) {
      VNVRAM_ASSIGN_OR_RETURN(const bool used, VolumeHasPath(xs, tx, frontend, *volume));
      if (!used) VNVRAM_RETURN_IF_ERROR(xs.Remove(tx, schema::MultipathDir(frontend, *volume)));
    }
    VNVRAM_RETURN_IF_ERROR(RemoveIfEmpty(xs, tx, MultipathRoot(frontend)));
    VNVRAM_RETURN_IF_ERROR(RemoveIfEmpty(xs, tx, schema::DomainVnvramDir(frontend)));
    return RemoveIfEmpty(xs, tx, schema::FrontendRoot(frontend));
  });
}

std::string MultipathRoot(DomId f) {
  const std::string any = schema::MultipathDir(f, Uuid{});
  return any.substr(0, any.rfind('/'));
}

Result<bool> VolumeHasPath(platform::XenStore& xs, platform::TxId tx, DomId f, const Uuid& volume) {
  auto devs = xs.Directory(tx, schema::FrontendRoot(f));
  if (!devs.ok()) {
    if (devs.status().code() == Code::kNotFound) return false;
    return devs.status();
  }
  for (const std::string& name : *devs) {
    auto dev = ParseDevId(name, "device id");
    if (!dev.ok()) continue;
    auto v = xs.Read(tx, schema::FrontendKey(f, *dev, fe::kVolume));
    if (!v.ok()) continue;
    if (auto u = ParseUuid(*v); u.ok() && *u == volume) return true;
  }
  return false;
}

Result<std::vector<DeviceListing>> List(platform::XenStore& xs) {
  std::vector<DeviceListing> out;
  auto domains = xs.Directory(platform::kNoTx, schema::kDomainRoot);
  if (!domains.ok()) {
    if (domains.status().code() == Code::kNotFound) return out;
    return domains.status();
  }
  for (const std::string& dname : *domains) {
    auto f = ParseDomId(dname, "domain");
    if (!f.ok()) continue;
    auto devs = xs.Directory(platform::kNoTx, schema::FrontendRoot(*f));
    if (!devs.ok()) continue;
    for (const std::string& devname : *devs) {
      auto dev = ParseDevId(devname, "device id");
      if (!dev.ok()) continue;
      DeviceListing l;
      l.frontend = *f;
      l.dev = *dev;
      l.frontend_state = StateOf(xs, schema::FrontendKey(*f, *dev, fe::kState));
      if (auto v = xs.Read(platform::kNoTx, schema::FrontendKey(*f, *dev, fe::kVolume)); v.ok()) {
        l.volume = *v;
      }
      auto bid = xs.Read(platform::kNoTx, schema::FrontendKey(*f, *dev, fe::kBackendId));
      if (bid.ok()) {
        if (auto b = ParseDomId(*bid, fe::kBackendId); b.ok()) l.backend = *b;
      }
      if (l.backend) {
        const DomId b = *l.backend;
        l.backend_state = StateOf(xs, schema::BackendKey(b, *f, *dev, be::kState));
        if (auto v = xs.Read(platform::kNoTx, schema::BackendKey(b, *f, *dev, be::kOnline));
            v.ok()) {
          l.online = *v;
        }
        if (auto v = xs.Read(platform::kNoTx, schema::BackendKey(b, *f, *dev, be::kRegionSize));
            v.ok()) {
          if (auto n = ParseU64(*v); n.ok()) l.region_size = *n;
        }
        if (auto v =
                xs.Read(platform::kNoTx, schema::BackendKey(b, *f, *dev, be::kStatDurableSequence));
            v.ok()) {
          if (auto n = ParseU64(*v); n.ok()) l.durable_seq = *n;
        }
        if (auto v = xs.Read(platform::kNoTx, schema::BackendKey(b, *f, *dev, be::kError));
            v.ok()) {
          l.error = *v;
        }
      }
      out.push_back(std::move(l));
    }
  }
  std::sort(out.begin(), out.end(), [](const DeviceListing& a, const DeviceListing& b) {
    return a.frontend != b.frontend ? a.frontend < b.frontend : a.dev < b.dev;
  });
  return out;
}

}  // namespace vnvram::tools
