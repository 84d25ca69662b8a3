#include "tools/nvram-tool/config_devices.h"

#include <poll.h>

#include <cerrno>
#include <functional>
#include <map>
#include <set>

#include "common/clock.h"
#include "xenstore-schema/schema.h"

namespace vnvram::tools {
namespace {

namespace fe = schema::fe;
namespace be = schema::be;
using schema::XenbusState;

// libxl writes the domain's name here; it is not a vnvram node.
constexpr std::string_view kLibxlNameNode = "name";
constexpr std::string_view kWaitToken = "nvram-tool:devices";

std::string DomainDir(DomId d) {
  return std::string(schema::kDomainRoot) + "/" + std::to_string(d);
}

Result<std::vector<std::string>> ChildrenOrEmpty(platform::XenStore& xs, const std::string& path) {
  auto kids = xs.Directory(platform::kNoTx, path);
  if (kids.ok()) return kids;
  if (kids.status().code() == Code::kNotFound) return std::vector<std::string>{};
  return kids.status();
}

// What a wait sees of one node.
struct Seen {
  bool exists = false;
  std::optional<XenbusState> state;
  std::string raw;
};

Seen Look(platform::XenStore& xs, const std::string& path) {
  Seen s;
  auto v = xs.Read(platform::kNoTx, path);
  if (!v.ok()) return s;
  s.exists = true;
  s.raw = *v;
  if (auto st = schema::ParseXenbusState(*v); st.ok()) s.state = *st;
  return s;
}

// Watches every path in `paths` and calls `done` with what each holds
// after every change, until it returns a value (its result) or `timeout`
// passes (then `on_timeout`).
Status WaitOnNodes(platform::XenStore& xs, const std::vector<std::string>& paths,
                   std::chrono::milliseconds timeout,
                   const std::function<std::optional<Status>(const std::vector<Seen>&)>& done,
                   const std::function<Status(const std::vector<Seen>&)>& on_timeout,
                   int stop_fd = -1) {
  std::vector<std::string> watched;
  Status result;
  for (const std::string& p : paths) {
    if (Status s = xs.Watch(p, kWaitToken); !s.ok()) {
      result = s.WithContext("watch " + p);
      break;
    }
    watched.push_back(p);
  }
  if (result.ok()) {
    Deadline dl(SystemClock::Instance(), timeout);
    for (;;) {
      std::vector<Seen> seen;
      seen.reserve(paths.size());
      for (const std::string& p : paths) seen.push_back(Look(xs, p));
      if (auto r = done(seen)) {
        result = *r;
        break;
      }
      if (dl.Expired()) {
        result = on_timeout(seen);
        break;
      }
      pollfd pfd[2] = {{xs.WatchFd(), POLLIN, 0}, {stop_fd, POLLIN, 0}};
      const int n = poll(pfd, stop_fd >= 0 ? 2 : 1, dl.RemainingMillisForPoll());
      if (n < 0 && errno != EINTR) {
        result = Status::FromErrno(errno, "poll");
        break;
      }
      if (stop_fd >= 0 && n > 0 && (pfd[1].revents & POLLIN) != 0) {
        result = Status::Aborted("interrupted by a signal");
        break;
      }
      for (;;) {  // drain; every node is read again anyway
        auto ev = xs.ReadWatch();
        if (!ev.ok() || !ev->has_value()) break;
      }
    }
  }
  for (const std::string& p : watched) (void)xs.Unwatch(p, kWaitToken);
  return result;
}

// Remove that also accepts a missing parent (xenstored's ENOENT): the
// toolstack may have removed /local/domain/F already.
Status RemoveIfPresent(platform::XenStore& xs, platform::TxId tx, const std::string& path) {
  Status s = xs.Remove(tx, path);
  return s.code() == Code::kNotFound ? Status::Ok() : s;
}

std::string DeviceName(const AttachSpec& s) {
  return "device " + std::to_string(s.dev) + " of domain " + std::to_string(s.frontend) +
         " (backend domain " + std::to_string(s.backend) + ")";
}

std::string StateName(const Seen& s) {
  if (!s.exists) return "none";
  if (!s.state) return QuoteForError(s.raw);
  return std::string(schema::XenbusStateName(*s.state));
}

}  // namespace

Result<std::optional<std::string>> ReadDomainName(platform::XenStore& xs, DomId d) {
  const std::string path = DomainDir(d) + "/" + std::string(kLibxlNameNode);
  auto v = xs.Read(platform::kNoTx, path);
  if (v.ok()) return std::optional<std::string>(*v);
  if (v.status().code() == Code::kNotFound) return std::optional<std::string>();
  return v.status().WithContext(path);
}

Result<DomId> ResolveDomainName(platform::XenStore& xs, std::string_view name) {
  VNVRAM_ASSIGN_OR_RETURN(auto doms, ChildrenOrEmpty(xs, std::string(schema::kDomainRoot)));
  std::optional<DomId> found;
  for (const std::string& dname : doms) {
    auto d = ParseDomId(dname, "domain");
    if (!d.ok()) continue;
    auto n = ReadDomainName(xs, *d);
    if (!n.ok() || !n->has_value() || **n != name) continue;
    auto alive = xs.IsDomainIntroduced(*d);
    if (!alive.ok() || !*alive) continue;
    if (found) {
      return Status::FailedPrecondition("domain name " + QuoteForError(name) +
                                        " is held by domains " + std::to_string(*found) + " and " +
                                        std::to_string(*d));
    }
    found = *d;
  }
  if (!found) return Status::NotFound("no running domain is named " + QuoteForError(name));
  return *found;
}

Result<std::vector<AttachSpec>> ResolveDevices(platform::XenStore& xs, const XlConfig& config,
                                               DomId frontend) {
  std::vector<AttachSpec> out;
  std::map<std::string, DomId> names;
  for (const VnvramVolume& v : config.volumes) {
    for (const VnvramPath& p : v.paths) {
      AttachSpec s;
      s.frontend = frontend;
      s.dev = p.devid;
      s.volume = v.volume;
      s.size = v.size;
      s.priority = p.priority;
      if (const DomId* d = std::get_if<DomId>(&p.backend)) {
        s.backend = *d;
      } else {
        const std::string& name = std::get<std::string>(p.backend);
        auto it = names.find(name);
        if (it == names.end()) {
          auto d = ResolveDomainName(xs, name);
          if (!d.ok()) {
            return d.status().WithContext(config.source + ":" + std::to_string(v.line) +
                                          ": vnvram: backend " + name);
          }
          it = names.emplace(name, *d).first;
        }
        s.backend = it->second;
      }
      if (s.backend == frontend) {
        return Status::InvalidArgument(config.source + ":" + std::to_string(v.line) +
                                       ": vnvram: backend " + FormatBackendRef(p.backend) +
                                       " is the guest itself (domain " + std::to_string(frontend) +
                                       ")");
      }
      out.push_back(s);
    }
  }
  return out;
}

Status AttachDevices(platform::XenStore& xs, const std::vector<AttachSpec>& specs,
                     std::vector<AttachSpec>* attached) {
  for (const AttachSpec& s : specs) {
    Status st = Attach(xs, s);
    if (st.ok()) {
      attached->push_back(s);
      continue;
    }
    if (st.code() != Code::kAlreadyExists) return st.WithContext("attach " + DeviceName(s));
    // Attached already by the same config through another path?
    auto vol = xs.Read(platform::kNoTx, schema::FrontendKey(s.frontend, s.dev, fe::kVolume));
    auto bid = xs.Read(platform::kNoTx, schema::FrontendKey(s.frontend, s.dev, fe::kBackendId));
    if (vol.ok() && bid.ok() && *vol == s.volume.ToString() && *bid == std::to_string(s.backend)) {
      continue;
    }
    return st.WithContext("attach " + DeviceName(s));
  }
  return Status::Ok();
}

Status WaitBackendsReady(platform::XenStore& xs, const std::vector<AttachSpec>& specs,
                         std::chrono::milliseconds timeout, int stop_fd) {
  if (specs.empty()) return Status::Ok();
  std::vector<std::string> paths;
  paths.reserve(specs.size());
  for (const AttachSpec& s : specs) {
    paths.push_back(schema::BackendKey(s.backend, s.frontend, s.dev, be::kState));
  }
  auto done = [&](const std::vector<Seen>& seen) -> std::optional<Status> {
    bool all = true;
    for (size_t i = 0; i < seen.size(); ++i) {
      const Seen& s = seen[i];
      if (!s.exists) {
        return Status::FailedPrecondition(DeviceName(specs[i]) + " was removed");
      }
      if (s.state == XenbusState::kClosing || s.state == XenbusState::kClosed) {
        std::string why = "backend state " + StateName(s);
        auto err = xs.Read(platform::kNoTx, schema::BackendKey(specs[i].backend, specs[i].frontend,
                                                               specs[i].dev, be::kError));
        if (err.ok()) why += ": " + Printable(*err, 200);
        return Status::FailedPrecondition(DeviceName(specs[i]) + " failed: " + why);
      }
      const bool ready = s.state == XenbusState::kInitWait ||
                         s.state == XenbusState::kInitialised || s.state == XenbusState::kConnected;
      all = all && ready;
    }
    if (all) return Status::Ok();
    return std::nullopt;
  };
  auto on_timeout = [&](const std::vector<Seen>& seen) -> Status {
    for (size_t i = 0; i < seen.size(); ++i) {
      if (seen[i].state != XenbusState::kInitWait && seen[i].state != XenbusState::kInitialised &&
          seen[i].state != XenbusState::kConnected) {
        return Status::Timeout(DeviceName(specs[i]) + ": backend not ready within " +
                               std::to_string(timeout.count()) + " ms (state " +
                               StateName(seen[i]) + "; is vnvramd running in domain " +
                               std::to_string(specs[i].backend) + "?)");
      }
    }
    return Status::Ok();
  };
  return WaitOnNodes(xs, paths, timeout, done, on_timeout, stop_fd);
}

Status DetachDevices(platform::XenStore& xs, const std::vector<AttachSpec>& specs,
                     std::chrono::milliseconds timeout) {
  Status first;
  DetachOptions opts;
  opts.timeout = timeout;
  opts.force = true;
  for (const AttachSpec& s : specs) {
    Status st = Detach(xs, s.frontend, s.dev, opts);
    if (!st.ok() && st.code() != Code::kNotFound && first.ok()) {
      first = st.WithContext("detach " + DeviceName(s));
    }
  }
  return first;
}

Result<std::vector<DomId>> FindDeadFrontends(platform::XenStore& xs) {
  VNVRAM_ASSIGN_OR_RETURN(auto doms, ChildrenOrEmpty(xs, std::string(schema::kDomainRoot)));
  std::set<DomId> candidates;
  for (const std::string& dname : doms) {
    auto d = ParseDomId(dname, "domain");
    if (!d.ok()) continue;
    VNVRAM_ASSIGN_OR_RETURN(auto devs, ChildrenOrEmpty(xs, schema::FrontendRoot(*d)));
    if (!devs.empty()) candidates.insert(*d);
    VNVRAM_ASSIGN_OR_RETURN(auto served, ChildrenOrEmpty(xs, schema::BackendRoot(*d)));
    for (const std::string& fname : served) {
      if (auto f = ParseDomId(fname, "frontend domain"); f.ok()) candidates.insert(*f);
    }
  }
  std::vector<DomId> dead;
  for (DomId f : candidates) {
    if (f == 0) continue;
    VNVRAM_ASSIGN_OR_RETURN(const bool alive, xs.IsDomainIntroduced(f));
    if (!alive) dead.push_back(f);
  }
  return dead;
}

Result<size_t> ReapDomain(platform::XenStore& xs, DomId f, std::chrono::milliseconds timeout) {
  struct Dev {
    DomId backend;
    DevId dev;
  };
  std::vector<Dev> devs;
  VNVRAM_ASSIGN_OR_RETURN(auto doms, ChildrenOrEmpty(xs, std::string(schema::kDomainRoot)));
  for (const std::string& bname : doms) {
    auto b = ParseDomId(bname, "domain");
    if (!b.ok()) continue;
    VNVRAM_ASSIGN_OR_RETURN(auto ids, ChildrenOrEmpty(xs, schema::BackendFrontendDir(*b, f)));
    for (const std::string& id : ids) {
      if (auto dev = ParseDevId(id, "device id"); dev.ok()) devs.push_back({*b, *dev});
    }
  }
  // Ask each backend to close (its frontend is gone: nobody answers the
  // Closing, so vnvramd goes straight to Closed on online = 0).
  std::vector<std::string> states;
  for (const Dev& d : devs) {
    const std::string state = schema::BackendKey(d.backend, f, d.dev, be::kState);
    VNVRAM_RETURN_IF_ERROR(platform::RunTransaction(xs, [&](platform::TxId tx) -> Status {
      auto cur = xs.Read(tx, state);
      if (!cur.ok()) return cur.status().code() == Code::kNotFound ? Status::Ok() : cur.status();
      VNVRAM_RETURN_IF_ERROR(
          xs.Write(tx, schema::BackendKey(d.backend, f, d.dev, be::kOnline), "0"));
      auto st = schema::ParseXenbusState(*cur);
      if (st.ok() && *st == XenbusState::kClosed) return Status::Ok();
      return xs.Write(tx, state, schema::XenbusStateValue(XenbusState::kClosing));
    }));
    states.push_back(state);
  }
  // Waiting is a courtesy to the backends (they release the region before
  // the directory goes); the nodes go whatever they answer.
  (void)WaitOnNodes(
      xs, states, timeout,
      [](const std::vector<Seen>& seen) -> std::optional<Status> {
        for (const Seen& s : seen) {
          if (s.exists && s.state != XenbusState::kClosed) return std::nullopt;
        }
        return Status::Ok();
      },
      [](const std::vector<Seen>&) { return Status::Ok(); });
  VNVRAM_RETURN_IF_ERROR(platform::RunTransaction(xs, [&](platform::TxId tx) -> Status {
    std::set<DomId> backends;
    for (const Dev& d : devs) {
      VNVRAM_RETURN_IF_ERROR(RemoveIfPresent(xs, tx, schema::BackendDir(d.backend, f, d.dev)));
      backends.insert(d.backend);
    }
    for (DomId b : backends) {
      VNVRAM_RETURN_IF_ERROR(RemoveIfPresent(xs, tx, schema::BackendFrontendDir(b, f)));
      auto left = xs.Directory(tx, schema::BackendRoot(b));
      if (left.ok() && left->empty())
        VNVRAM_RETURN_IF_ERROR(RemoveIfPresent(xs, tx, schema::BackendRoot(b)));
    }
    VNVRAM_RETURN_IF_ERROR(RemoveIfPresent(xs, tx, schema::FrontendRoot(f)));
    return RemoveIfPresent(xs, tx, schema::DomainVnvramDir(f));
  }));
  return devs.size();
}

}  // namespace vnvram::tools
