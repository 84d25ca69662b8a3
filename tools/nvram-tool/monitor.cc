#include "tools/nvram-tool/monitor.h"

#include <poll.h>

#include <cerrno>
#include <ctime>
#include <nlohmann/json.hpp>
#include <set>

#include "tools/nvram-tool/toolstack.h"
#include "xenstore-schema/schema.h"

namespace vnvram::tools {
namespace {

namespace fe = schema::fe;
namespace be = schema::be;
namespace mp = schema::mp;
namespace rk = schema::repl;
namespace dk = schema::daemon;

constexpr std::string_view kWatchToken = "nvram-tool:monitor";
constexpr std::string_view kAny = "*";  // one key segment, any name

std::vector<std::string> Split(std::string_view s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t slash = s.find('/', start);
    const size_t end = slash == std::string_view::npos ? s.size() : slash;
    out.emplace_back(s.substr(start, end - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return out;
}

std::string Join(const std::vector<std::string>& segs, size_t from) {
  std::string out;
  for (size_t i = from; i < segs.size(); ++i) {
    if (i > from) out += '/';
    out += segs[i];
  }
  return out;
}

// The segments of a directory builder's path below its domain's path.
std::vector<std::string> BelowDomain(const std::string& path_of_dom0) {
  const std::string home = std::string(schema::kDomainRoot) + "/0/";
  return Split(std::string_view(path_of_dom0).substr(home.size()));
}

// Canonical spellings only, so that every node has one name.
std::optional<DomId> CanonicalDomId(const std::string& s) {
  auto d = ParseDomId(s);
  if (!d.ok() || std::to_string(*d) != s) return std::nullopt;
  return *d;
}
std::optional<DevId> CanonicalDevId(const std::string& s) {
  auto d = ParseDevId(s);
  if (!d.ok() || std::to_string(*d) != s) return std::nullopt;
  return *d;
}
std::optional<std::string> CanonicalUuid(const std::string& s) {
  auto u = ParseUuid(s);
  if (!u.ok() || u->ToString() != s) return std::nullopt;
  return s;
}

bool IsStateKey(MonitorKind k, std::string_view key) {
  return (k == MonitorKind::kFrontend && key == fe::kState) ||
         (k == MonitorKind::kBackend && key == be::kState);
}

// A value for the plain format: as is when it is one printable word,
// quoted and escaped otherwise; state values with their name.
std::string Show(const MonitorChange& c, const std::optional<std::string>& v,
                 std::string_view absent) {
  if (!v) return std::string(absent);
  if (IsStateKey(c.kind, c.key)) {
    if (auto st = schema::ParseXenbusState(*v); st.ok()) {
      return std::string(schema::XenbusStateName(*st)) + "(" + *v + ")";
    }
  }
  bool word = !v->empty() && *v != "(none)" && *v != "removed";
  for (char ch : *v) {
    const auto u = static_cast<unsigned char>(ch);
    if (u <= 0x20 || u >= 0x7f || ch == '\'' || ch == '\\') word = false;
  }
  return word ? *v : QuoteForError(*v, 256);
}

std::string IsoTime(Nanos wall) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(wall).count();
  const time_t secs = static_cast<time_t>(ms / 1000);
  tm t{};
  gmtime_r(&secs, &t);
  char buf[64];
  const size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &t);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(ms % 1000));
  return buf;
}

// A node's value; nullopt when it does not exist; an error otherwise.
Result<std::optional<std::string>> ReadOptional(platform::XenStore& xs, const std::string& path) {
  auto v = xs.Read(platform::kNoTx, path);
  if (v.ok()) return std::optional<std::string>(std::move(v).value());
  if (v.status().code() == Code::kNotFound) return std::optional<std::string>();
  return v.status();
}

}  // namespace

std::string_view MonitorKindName(MonitorKind k) {
  switch (k) {
    case MonitorKind::kFrontend: return "frontend";
    case MonitorKind::kBackend: return "backend";
    case MonitorKind::kMultipath: return "multipath";
    case MonitorKind::kReplication: return "replication";
    case MonitorKind::kDaemon: return "daemon";
  }
  return "?";
}

Monitor::Monitor(platform::XenStore& xs, const Clock& clock, MonitorOptions options)
    : xs_(xs), clock_(clock), options_(options) {
  auto keys = [](std::initializer_list<std::string> ks) {
    std::vector<std::vector<std::string>> out;
    for (const std::string& k : ks) out.push_back(Split(k));
    return out;
  };
  auto s = [](std::string_view v) { return std::string(v); };
  const std::string repl_dir = schema::ReplicationDir(0, Uuid{});
  std::vector<std::string> repl_root = BelowDomain(repl_dir);
  repl_root.pop_back();  // the volume
  patterns_ = {
      {MonitorKind::kFrontend, BelowDomain(schema::FrontendRoot(0)), 1,
       keys({s(fe::kState), s(fe::kPathRole), s(fe::kActivate)})},
      {MonitorKind::kBackend, BelowDomain(schema::BackendRoot(0)), 2,
       keys({s(be::kState), s(be::kRole), s(be::kEpoch), s(be::kReplicationState),
             s(be::kPrimaryLink), s(be::kActivated), s(be::kActivateResult), s(be::kError),
             s(be::kOnline)})},
      {MonitorKind::kMultipath, BelowDomain(MultipathRoot(0)), 1,
       keys({s(mp::kActivePath), s(mp::kStatus), s(mp::kEpoch),
             s(mp::kFailoverDir) + "/" + s(kAny)})},
      {MonitorKind::kReplication, repl_root, 1,
       keys({s(rk::kRole), s(rk::kEpoch), s(rk::kServing), s(rk::kPromise),
             s(rk::kPromoteCompleted), s(rk::kPromoteResult), rk::ReplicaState(kAny)})},
      {MonitorKind::kDaemon, BelowDomain(schema::DaemonDir(0)), 0,
       keys({s(dk::kStatus), dk::PeerState(kAny)})},
  };
}

Monitor::Where Monitor::Classify(std::string_view path) const {
  Where w;
  const std::string_view root = schema::kDomainRoot;
  if (path == root) {
    w.match = Match::kPrefix;
    return w;
  }
  if (path.size() <= root.size() + 1 || path.substr(0, root.size()) != root ||
      path[root.size()] != '/') {
    return w;
  }
  const std::vector<std::string> segs = Split(path.substr(root.size() + 1));
  auto dom = CanonicalDomId(segs[0]);
  if (!dom) return w;
  w.domain = *dom;
  if (segs.size() == 1) {
    w.match = Match::kPrefix;
    return w;
  }
  for (const Pattern& p : patterns_) {
    Where c;
    c.kind = p.kind;
    c.domain = *dom;
    const size_t fixed = p.root.size();
    const size_t placeholders = fixed + static_cast<size_t>(p.wildcards);
    bool fits = true;
    for (size_t i = 1; i < segs.size() && fits; ++i) {
      const size_t r = i - 1;  // index below the domain
      const std::string& seg = segs[i];
      if (r < fixed) {
        fits = seg == p.root[r];
      } else if (r < placeholders) {
        const size_t j = r - fixed;
        if (p.kind == MonitorKind::kBackend && j == 0) {
          c.frontend = CanonicalDomId(seg);
          fits = c.frontend.has_value();
        } else if (p.kind == MonitorKind::kFrontend || p.kind == MonitorKind::kBackend) {
          c.dev = CanonicalDevId(seg);
          fits = c.dev.has_value();
        } else {
          auto vol = CanonicalUuid(seg);
          fits = vol.has_value();
          if (vol) c.volume = *vol;
        }
      }
    }
    if (!fits) continue;
    const size_t below = segs.size() - 1;
    if (below <= placeholders) {
      c.match = Match::kPrefix;
    } else {
      const size_t nkey = below - placeholders;
      for (const auto& k : p.keys) {
        if (nkey > k.size()) continue;
        bool same = true;
        for (size_t x = 0; x < nkey && same; ++x) {
          same = k[x] == kAny || k[x] == segs[1 + placeholders + x];
        }
        if (!same) continue;
        if (nkey == k.size()) {
          c.match = Match::kLeaf;
          break;
        }
        c.match = Match::kPrefix;
      }
      if (c.match == Match::kNone) continue;
      c.key = Join(segs, 1 + placeholders);
    }
    if (c.match == Match::kLeaf) return c;
    if (c.match == Match::kPrefix && w.match == Match::kNone) {
      // The domain's tree below a shared root ("vnvram") is a prefix of
      // several kinds; any of them will do for a rescan.
      w = c;
    }
  }
  return w;
}

std::optional<std::string> Monitor::ReadValue(const std::string& path) {
  auto v = xs_.Read(platform::kNoTx, path);
  if (v.ok()) return std::move(v).value();
  return std::nullopt;
}

bool Monitor::Scan(const std::string& path, std::map<std::string, std::string>* seen) {
  auto kids = xs_.Directory(platform::kNoTx, path);
  if (!kids.ok()) return false;  // gone (or unreadable): nothing below
  for (const std::string& k : *kids) {
    std::string child = path;
    child += '/';
    child += k;
    const Where w = Classify(child);
    if (w.match == Match::kLeaf) {
      if (auto v = ReadValue(child)) (*seen)[child] = std::move(*v);
    } else if (w.match == Match::kPrefix) {
      // A device directory: remember its volume, for when it is removed.
      if (w.dev && w.key.empty()) (void)VolumeOf(w);
      (void)Scan(child, seen);
    }
  }
  return true;
}

Status Monitor::Prime() {
  const std::string root(schema::kDomainRoot);
  std::map<std::string, std::string> seen;
  Scan(root, &seen);
  cache_.clear();
  for (auto& [p, v] : seen) cache_.emplace(p, std::move(v));
  return Status::Ok();
}

std::string Monitor::VolumeOf(const Where& w) {
  if (w.kind == MonitorKind::kMultipath || w.kind == MonitorKind::kReplication) return w.volume;
  if (w.kind == MonitorKind::kDaemon || !w.dev) return "";
  std::string dir, key;
  if (w.kind == MonitorKind::kFrontend) {
    dir = schema::FrontendDir(w.domain, *w.dev);
    key = schema::FrontendKey(w.domain, *w.dev, fe::kVolume);
  } else {
    if (!w.frontend) return "";
    dir = schema::BackendDir(w.domain, *w.frontend, *w.dev);
    key = schema::BackendKey(w.domain, *w.frontend, *w.dev, be::kVolume);
  }
  if (auto v = xs_.Read(platform::kNoTx, key); v.ok()) {
    if (auto u = ParseUuid(*v); u.ok()) volumes_[dir] = u->ToString();
  }
  auto it = volumes_.find(dir);
  return it == volumes_.end() ? std::string() : it->second;
}

bool Monitor::Passes(const MonitorChange& c) const {
  if (!options_.domain) return true;
  return c.domain == *options_.domain || (c.frontend && *c.frontend == *options_.domain);
}

void Monitor::Report(const Where& w, const std::string& path, std::optional<std::string> old_value,
                     std::optional<std::string> new_value, std::vector<MonitorChange>* out) {
  MonitorChange c;
  c.wall = clock_.WallNow();
  c.domain = w.domain;
  c.kind = w.kind;
  c.path = path;
  c.key = w.key;
  c.frontend = w.frontend;
  c.dev = w.dev;
  c.old_value = std::move(old_value);
  c.new_value = std::move(new_value);
  if (!Passes(c)) return;
  c.volume = VolumeOf(w);
  out->push_back(std::move(c));
}

std::vector<MonitorChange> Monitor::OnEvent(std::string_view path_view) {
  std::vector<MonitorChange> out;
  const std::string path(path_view);
  const Where w = Classify(path);
  if (w.match == Match::kNone) return out;
  if (w.match == Match::kLeaf) {
    auto now = ReadOptional(xs_, path);
    if (!now.ok()) return out;  // unreadable: keep what we knew
    auto it = cache_.find(path);
    std::optional<std::string> before;
    if (it != cache_.end()) before = it->second;
    if (before == *now) return out;
    if (*now) {
      cache_[path] = **now;
    } else {
      cache_.erase(it);
    }
    Report(w, path, std::move(before), std::move(*now), &out);
    return out;
  }
  // A directory: rescan its relevant part and compare with the cache.
  std::map<std::string, std::string> seen;
  const bool exists = Scan(path, &seen);
  const std::string prefix = path + "/";
  std::set<std::string> paths;
  for (auto it = cache_.lower_bound(prefix);
       it != cache_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
    paths.insert(it->first);
  }
  for (const auto& [p, v] : seen) paths.insert(p);
  for (const std::string& p : paths) {
    auto c = cache_.find(p);
    auto s = seen.find(p);
    std::optional<std::string> before, now;
    if (c != cache_.end()) before = c->second;
    if (s != seen.end()) now = s->second;
    if (before == now) continue;
    if (now) {
      cache_[p] = *now;
    } else {
      cache_.erase(c);
    }
    Report(Classify(p), p, std::move(before), std::move(now), &out);
  }
  if (!exists) {  // forget the volumes of devices that went with it
    for (auto it = volumes_.lower_bound(prefix);
         it != volumes_.end() && it->first.compare(0, prefix.size(), prefix) == 0;) {
      it = volumes_.erase(it);
    }
    volumes_.erase(path);
  }
  return out;
}

std::string Monitor::Format(const MonitorChange& c) const {
  if (options_.json) {
    auto opt = [](const std::optional<std::string>& v) {
      return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
    };
    nlohmann::json j = {
        {"time", IsoTime(c.wall)},
        {"domain", c.domain},
        {"kind", MonitorKindName(c.kind)},
        {"path", c.path},
        {"key", c.key},
        {"old", opt(c.old_value)},
        {"new", opt(c.new_value)},
        {"volume", c.volume.empty() ? nlohmann::json(nullptr) : nlohmann::json(c.volume)},
        {"devid", c.dev ? nlohmann::json(*c.dev) : nlohmann::json(nullptr)},
        {"frontend_domain", c.frontend ? nlohmann::json(*c.frontend) : nlohmann::json(nullptr)}};
    // Values are bytes a guest may have written: never throw on bad UTF-8.
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  std::string line = IsoTime(c.wall);
  line += " dom " + std::to_string(c.domain);
  line += " vol " + (c.volume.empty() ? std::string("-") : c.volume);
  line += " ";
  line += MonitorKindName(c.kind);
  if (c.dev) {
    line += " dev ";
    if (c.frontend) line += std::to_string(*c.frontend) + "/";
    line += std::to_string(*c.dev);
  }
  line += " " + c.key + ": " + Show(c, c.old_value, "(none)") + " -> " +
          Show(c, c.new_value, "removed");
  return line;
}

Status RunMonitor(platform::XenStore& xs, const MonitorOptions& options, std::FILE* out,
                  std::FILE* err, int stop_fd) {
  const std::string root(schema::kDomainRoot);
  // Watch before priming: a change in between shows on the first event.
  VNVRAM_RETURN_IF_ERROR(xs.Watch(root, kWatchToken));
  Monitor monitor(xs, SystemClock::Instance(), options);
  Status s = monitor.Prime();
  if (s.ok()) {
    std::fprintf(err, "nvram-tool monitor: watching %s (%zu nodes)\n", root.c_str(),
                 monitor.cached());
    std::fflush(err);
  }
  while (s.ok()) {
    pollfd fds[2] = {{xs.WatchFd(), POLLIN, 0}, {stop_fd, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      s = Status::FromErrno(errno, "poll");
      break;
    }
    if (fds[1].revents != 0) break;
    for (;;) {
      auto ev = xs.ReadWatch();
      if (!ev.ok()) {
        s = ev.status().WithContext("xenstore watch");
        break;
      }
      if (!ev->has_value()) break;
      if ((*ev)->token != kWatchToken) continue;
      for (const MonitorChange& c : monitor.OnEvent((*ev)->path)) {
        const std::string line = monitor.Format(c);
        std::fprintf(out, "%s\n", line.c_str());
        std::fflush(out);
      }
    }
  }
  (void)xs.Unwatch(root, kWatchToken);
  return s;
}

}  // namespace vnvram::tools
