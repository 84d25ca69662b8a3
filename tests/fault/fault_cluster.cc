#include "tests/fault/fault_cluster.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/crc32c.h"
#include "tools/nvram-tool/replication_admin.h"
#include "xenstore-schema/schema.h"

namespace vnvram::testing {
namespace {

namespace rk = schema::repl;

constexpr const char* kVolume = "5f1d7c3e-2b8a-4c61-9e0f-7a3b5c9d1e24";

// Distinct free loopback ports: all bound at once, then released.
Result<std::vector<uint16_t>> FreePorts(size_t n) {
  std::vector<int> fds;
  std::vector<uint16_t> ports;
  Status err;
  for (size_t i = 0; i < n && err.ok(); ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      err = Status::FromErrno(errno, "socket");
      break;
    }
    fds.push_back(fd);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      err = Status::FromErrno(errno, "bind 127.0.0.1:0");
      break;
    }
    ports.push_back(ntohs(a.sin_port));
  }
  for (int fd : fds) ::close(fd);
  if (!err.ok()) return err;
  return ports;
}

std::string Tail(const std::string& s, size_t n) {
  return s.size() > n ? "...\n" + s.substr(s.size() - n) : s;
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

Result<std::unique_ptr<FaultCluster>> FaultCluster::Create(FaultClusterOptions options) {
  std::unique_ptr<FaultCluster> c(new FaultCluster());
  c->options_ = std::move(options);
  c->volume_ = kVolume;
  char tmpl[] = "/tmp/vnvram-fault-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return Status::FromErrno(errno, "mkdtemp");
  c->scratch_ = tmpl;
  auto xa = sim::testing::XenstoredProcess::Start({1, 2});
  if (!xa.ok()) return xa.status().WithContext("xenstored of host A");
  c->xenstored_[0] = std::move(xa).value();
  if (Status s = c->RestartXenstoredW(); !s.ok()) return s;
  auto p = platform::OpenPlatform(c->PlatformSpec(0, 0));
  if (!p.ok()) return p.status();
  c->dom0_[0] = std::move(p).value();

  struct Spec {
    const char* id;
    int host;
    DomId domid;
    int path;
  };
  const Spec specs[] = {{"a0", 0, 0, 0}, {"a1", 0, 2, 1}, {"w", 1, 0, -1}};
  auto ports = FreePorts(std::size(specs));
  if (!ports.ok()) return ports.status();
  for (size_t i = 0; i < std::size(specs); ++i) {
    auto m = std::make_unique<Member>();
    m->id = specs[i].id;
    m->host = specs[i].host;
    m->domid = specs[i].domid;
    m->path = specs[i].path;
    m->port = (*ports)[i];
    m->dir = c->scratch_ + "/" + m->id;
    m->vault_dir = m->dir + "/vault";
    m->log_path = m->dir + "/vnvramd.log";
    m->cluster_file = m->dir + "/cluster.json";
    std::error_code ec;
    std::filesystem::create_directories(m->vault_dir, ec);
    if (ec) return Status::IoError("mkdir " + m->vault_dir + ": " + ec.message());
    c->ids_.push_back(m->id);
    c->members_[m->id] = std::move(m);
  }
  for (const std::string& from : c->ids_) {
    for (const std::string& to : c->ids_) {
      if (from == to) continue;
      auto proxy = LinkProxy::Start(c->members_[to]->port);
      if (!proxy.ok()) return proxy.status();
      c->proxies_[{from, to}] = std::move(proxy).value();
    }
  }
  if (Status s = c->WriteClusterFiles(); !s.ok()) return s;
  return c;
}

FaultCluster::~FaultCluster() {
  for (auto& [id, m] : members_) m->daemon.reset();
  proxies_.clear();
  for (int h = 0; h < 2; ++h) {
    xs_[h].reset();
    dom0_[h].reset();
    xenstored_[h].reset();
  }
  if (!options_.keep_dir && !scratch_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(scratch_, ec);
  }
}

std::string FaultCluster::PlatformSpec(int host, DomId domid) const {
  return "sim:" + xenstored_[host]->socket_dir() + ":" + std::to_string(domid);
}

platform::XenStore* FaultCluster::Xs(int host) {
  if (!xs_[host] && xenstored_[host] && dom0_[host]) {
    auto x = dom0_[host]->OpenXenStore();
    if (x.ok()) xs_[host] = std::move(x).value();
  }
  return xs_[host].get();
}

Status FaultCluster::WriteClusterFiles() {
  auto file = [&](const std::string& path, const std::string& self) -> Status {
    nlohmann::json j;
    j["version"] = 1;
    j["settings"] = {{"heartbeat-interval-ms", options_.heartbeat_interval_ms},
                     {"peer-expiry-ms", options_.peer_expiry_ms},
                     {"resync-chunk-size", "64K"}};
    j["hosts"] = nlohmann::json::array();
    for (const std::string& id : ids_) {
      // A member binds its real port and dials its peers through the
      // proxies; the harness (self empty) dials the real ports.
      const uint16_t port =
          (self.empty() || id == self) ? members_[id]->port : proxies_[{self, id}]->port();
      j["hosts"].push_back({{"id", id}, {"endpoint", "tcp://127.0.0.1:" + std::to_string(port)}});
    }
    j["volumes"] = nlohmann::json::array({{{"uuid", volume_},
                                           {"name", "fault-journal"},
                                           {"size", options_.volume_size},
                                           {"replicas", ids_},
                                           {"policy", "sync"}}});
    std::ofstream f(path);
    f << j.dump(2) << "\n";
    return f.good() ? Status::Ok() : Status::IoError("cannot write " + path);
  };
  for (const std::string& id : ids_) {
    if (Status s = file(members_[id]->cluster_file, id); !s.ok()) return s;
  }
  admin_cluster_file_ = scratch_ + "/cluster-admin.json";
  return file(admin_cluster_file_, "");
}

Status FaultCluster::Start(const std::string& id) {
  Member& m = member(id);
  if (m.daemon) return Status::FailedPrecondition("vnvramd " + id + " already runs");
  if (!xenstored_[m.host]) return Status::Unavailable("the xenstored of " + id + "'s host is down");
  backend::testing::VnvramdProcess::Options o;
  o.sim_dir = xenstored_[m.host]->socket_dir();
  o.self = m.domid;
  o.vault_dir = m.vault_dir;
  o.log_path = m.log_path;
  o.extra_args = {"--cluster", m.cluster_file,         "--host-id",
                  id,          "--persist-timeout-ms", std::to_string(options_.persist_timeout_ms)};
  // The volume's pages are granted to the guest: beyond the sim's default
  // gntalloc limit of 1024 pages for volumes over 4 MiB.
  o.extra_env = {"VNVRAM_SIM_GNTALLOC_LIMIT=" + std::to_string(options_.volume_size / 4096 + 1024)};
  {
    std::ofstream f(m.log_path, std::ios::app);
    f << "==== harness: starting vnvramd " << id << " ====\n";
  }
  auto d = backend::testing::VnvramdProcess::Start(o);
  if (!d.ok()) return d.status().WithContext("start vnvramd " + id);
  m.daemon = std::move(d).value();
  return Status::Ok();
}

Status FaultCluster::StartAll() {
  for (const std::string& id : ids_) {
    if (Status s = Start(id); !s.ok()) return s;
  }
  return Status::Ok();
}

Status FaultCluster::Kill(const std::string& id) {
  Member& m = member(id);
  if (!m.daemon) return Status::FailedPrecondition("vnvramd " + id + " is not running");
  m.daemon->Kill();
  m.daemon.reset();
  return Status::Ok();
}

Status FaultCluster::Stop(const std::string& id) {
  Member& m = member(id);
  if (!m.daemon) return Status::FailedPrecondition("vnvramd " + id + " is not running");
  auto rc = m.daemon->Stop(std::chrono::milliseconds(10000));
  m.daemon.reset();
  if (!rc.ok()) return rc.status().WithContext("stop vnvramd " + id);
  return Status::Ok();
}

bool FaultCluster::Running(const std::string& id) {
  Member& m = member(id);
  if (!m.daemon) return false;
  // Signal 0: the process (or its unreaped zombie) exists; a zombie means
  // it exited, which kill(2) cannot tell, so look at /proc.
  const std::string stat = ReadFile("/proc/" + std::to_string(m.daemon->pid()) + "/stat");
  const size_t close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z';
}

Status FaultCluster::KillXenstoredW() {
  if (!xenstored_[1]) return Status::FailedPrecondition("host W's xenstored is not running");
  xs_[1].reset();
  dom0_[1].reset();
  if (::kill(xenstored_[1]->pid(), SIGKILL) != 0) return Status::FromErrno(errno, "kill xenstored");
  // The destructor reaps it (SIGTERM to a dead process is harmless).
  xenstored_[1].reset();
  return Status::Ok();
}

Status FaultCluster::RestartXenstoredW() {
  xs_[1].reset();
  dom0_[1].reset();
  xenstored_[1].reset();
  auto xw = sim::testing::XenstoredProcess::Start({});
  if (!xw.ok()) return xw.status().WithContext("xenstored of host W");
  xenstored_[1] = std::move(xw).value();
  auto p = platform::OpenPlatform(PlatformSpec(1, 0));
  if (!p.ok()) return p.status();
  dom0_[1] = std::move(p).value();
  return Status::Ok();
}

bool FaultCluster::XenstoredWRunning() {
  return xenstored_[1] && xenstored_[1]->Alive();
}

Status FaultCluster::AttachPaths() {
  for (const std::string& id : ids_) {
    const Member& m = *members_[id];
    if (m.path < 0) continue;
    std::vector<std::string> argv = {options_.bin_dir + "/nvram-tool",
                                     "--platform",
                                     PlatformSpec(0, 0),
                                     "attach",
                                     "1",
                                     "--backend",
                                     std::to_string(m.domid),
                                     "--devid",
                                     std::to_string(m.path),
                                     "--size",
                                     std::to_string(options_.volume_size),
                                     "--volume",
                                     volume_,
                                     "--priority",
                                     m.path == 0 ? "2" : "1"};
    auto r = sim::testing::RunProgram(argv, {}, std::chrono::milliseconds(30000));
    if (!r.ok()) return r.status();
    if (r->exit_code != 0) return Status::Internal("nvram-tool attach: " + r->out);
  }
  return Status::Ok();
}

Result<std::unique_ptr<ChildProcess>> FaultCluster::SpawnWriter(uint64_t from, uint64_t count,
                                                                uint32_t tag,
                                                                uint64_t pause_every) {
  return ChildProcess::Spawn(
      {options_.bin_dir + "/vnvram-guest-demo", "--platform", PlatformSpec(0, 1), "--volume",
       volume_, "--timeout-ms", std::to_string(options_.guest_timeout_ms), "--log-level", "info",
       "write", "--from", std::to_string(from), "--count", std::to_string(count), "--pause-every",
       std::to_string(pause_every), "--tag", std::to_string(tag), "--timestamps"});
}

std::string FaultCluster::Repl(const std::string& id, std::string_view key) {
  const Member& m = member(id);
  platform::XenStore* xs = Xs(m.host);
  if (xs == nullptr) return "";
  auto uuid = ParseUuid(volume_);
  auto v = xs->Read(platform::kNoTx, schema::ReplicationKey(m.domid, *uuid, key));
  return v.ok() ? *v : std::string();
}

std::string FaultCluster::Mp(std::string_view key) {
  platform::XenStore* xs = Xs(0);
  if (xs == nullptr) return "";
  auto v = xs->Read(platform::kNoTx, schema::MultipathKey(1, *ParseUuid(volume_), key));
  return v.ok() ? *v : std::string();
}

std::string FaultCluster::HealthyPrimary() {
  for (const std::string& id : ids_) {
    if (!Running(id)) continue;
    if (Repl(id, rk::kRole) != rk::kRolePrimary || Repl(id, rk::kServing) != "1") continue;
    bool all = true;
    for (const std::string& other : ids_) {
      if (other != id && Repl(id, rk::ReplicaState(other)) != rk::kReplicaStateInSync) {
        all = false;
      }
    }
    if (all) return id;
  }
  return "";
}

std::vector<std::pair<std::string, uint64_t>> FaultCluster::Primaries() {
  std::vector<std::pair<std::string, uint64_t>> out;
  const Uuid uuid = *ParseUuid(volume_);
  for (const std::string& id : ids_) {
    if (!Running(id)) continue;
    const Member& m = *members_[id];
    platform::XenStore* xs = Xs(m.host);
    if (xs == nullptr) continue;
    // Role and epoch from one snapshot: vnvramd publishes them in one
    // transaction, and two plain reads could straddle a change.
    std::string role, epoch;
    const Status s = platform::RunTransaction(*xs, [&](platform::TxId tx) -> Status {
      auto r = xs->Read(tx, schema::ReplicationKey(m.domid, uuid, rk::kRole));
      auto e = xs->Read(tx, schema::ReplicationKey(m.domid, uuid, rk::kEpoch));
      role = r.ok() ? *r : "";
      epoch = e.ok() ? *e : "";
      return Status::Ok();
    });
    if (!s.ok() || role != rk::kRolePrimary) continue;
    auto e = ParseU64(epoch);
    if (e.ok()) out.emplace_back(id, *e);
  }
  return out;
}

void FaultCluster::Partition(const std::string& id, bool cut) {
  for (auto& [link, proxy] : proxies_) {
    if (link.first == id || link.second == id) proxy->SetBlackhole(cut);
  }
}

void FaultCluster::Slow(const std::string& id, std::chrono::milliseconds delay) {
  for (auto& [link, proxy] : proxies_) {
    if (link.first == id || link.second == id) proxy->SetDelay(delay);
  }
}

void FaultCluster::HealAll() {
  for (auto& [link, proxy] : proxies_) {
    proxy->SetBlackhole(false);
    proxy->SetDelay(std::chrono::milliseconds(0));
  }
}

Result<FaultCluster::Copy> FaultCluster::ReadCopy(const std::string& id) {
  Copy c;
  c.bytes.reserve(options_.volume_size);
  for (uint64_t off = 0; off < options_.volume_size; off += 1u << 20) {
    tools::InspectSpec s;
    s.cluster_file = admin_cluster_file_;
    s.host = id;
    s.volume = *ParseUuid(volume_);
    s.offset = off;
    s.length = static_cast<uint32_t>(std::min<uint64_t>(1u << 20, options_.volume_size - off));
    s.timeout = std::chrono::milliseconds(5000);
    auto r = tools::Inspect(s);
    if (!r.ok()) return r.status().WithContext("INSPECT " + id);
    if (r->data.size() != s.length) {
      return Status::OutOfRange(id + " returned " + std::to_string(r->data.size()) +
                                " bytes at offset " + std::to_string(off));
    }
    if (off == 0) {
      c.epoch = r->epoch;
      c.sequence = r->sequence;
    }
    c.crcs.push_back(r->crc32c);
    c.bytes.insert(c.bytes.end(), r->data.begin(), r->data.end());
  }
  return c;
}

std::string FaultCluster::Logs(size_t tail_bytes) {
  std::string all;
  for (const std::string& id : ids_) {
    all += "---- vnvramd " + id + " ----\n" + Tail(ReadFile(member(id).log_path), tail_bytes);
  }
  return all;
}

}  // namespace vnvram::testing
