// SimCluster: test support for the multi-process replication tests: N
// simulated hosts on loopback, each with its own vnvram-xenstored (serving
// guest domain 1) and its own vnvramd as dom0 (--cluster, --host-id), a
// cluster file naming them, and helpers to run nvram-tool and
// vnvram-guest-demo on a host, read a host's replication keys, inspect a
// host's copy of a volume over ZeroMQ (tools/nvram-tool/replication_admin)
// and wait for a condition across hosts.
//
// Ports. The cluster file needs fixed endpoints, so the cluster picks them
// before any vnvramd starts: it binds one TCP socket per host to
// 127.0.0.1:0 (all held open at once, so the kernel hands out distinct
// ports), reads the ports back and closes the sockets. Another process may
// take such a port between that close and vnvramd's bind; vnvramd then
// exits with "bind tcp://127.0.0.1:PORT: Address already in use", which the
// test reports (no retry: the ports are written into the shared cluster
// file, which every host reads at start).
//
// Waits are on events with deadlines: ready fds (vnvramd, xenstored),
// xenstore watches on every host's vnvram directory, process output lines,
// inotify on log files. WaitFor() also re-checks its condition every 50 ms
// while it waits, because some conditions (the bytes of a copy, read by
// INSPECT) have no event of their own. Uses Boost.Test assertions; one
// object per test case; not thread-safe.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "backend/testing/vnvramd_harness.h"
#include "common/clock.h"
#include "common/crc32c.h"
#include "common/parse.h"
#include "platform/platform.h"
#include "platform/sim/xenstored/testing/xenstored_process.h"
#include "tests/child_process.h"
#include "tools/nvram-tool/replication_admin.h"
#include "xenstore-schema/schema.h"

namespace vnvram::testing {

using std::chrono::milliseconds;
inline constexpr milliseconds kClusterWait{30000};

inline std::string ClusterBin(const std::string& name) {
  return std::string(VNVRAM_BIN_DIR) + "/" + name;
}

struct VolumeSpec {
  std::string uuid;
  std::string name;
  uint64_t size = 1 << 20;
  std::vector<std::string> replicas;
  std::string policy = "sync";
};

struct ClusterSpec {
  std::vector<std::string> hosts = {"a", "b", "c"};
  std::vector<VolumeSpec> volumes;
  bool curve = false;  // nvram-tool keygen per host; public keys in the file
  uint32_t heartbeat_interval_ms = 50;
  uint32_t peer_expiry_ms = 500;
  std::string resync_chunk = "64K";
  uint32_t persist_timeout_ms = 3000;
  // Hosts whose vnvramd runs with --replica-only (the replication engine
  // alone: no xenstore keys, no guests; their sim xenstored still runs).
  std::vector<std::string> replica_only;
};

// Picks `n` distinct free loopback ports (see the header comment).
inline std::vector<uint16_t> PickFreePorts(size_t n) {
  std::vector<int> fds;
  std::vector<uint16_t> ports;
  for (size_t i = 0; i < n; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    BOOST_TEST_REQUIRE(fd >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    BOOST_TEST_REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    BOOST_TEST_REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    fds.push_back(fd);
    ports.push_back(ntohs(a.sin_port));
  }
  for (int fd : fds) ::close(fd);
  return ports;
}

inline std::string ReadWholeFile(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Waits (inotify on the file, with a deadline) until the file at `path`
// contains `needle`; true when it does.
inline bool WaitForFileText(const std::string& path, const std::string& needle,
                            milliseconds deadline) {
  const int in = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (in < 0) return false;
  (void)::inotify_add_watch(in, path.c_str(), IN_MODIFY | IN_CLOSE_WRITE);
  const Deadline d(SystemClock::Instance(), deadline);
  bool found = false;
  for (;;) {
    if (ReadWholeFile(path).find(needle) != std::string::npos) {
      found = true;
      break;
    }
    if (d.Expired()) break;
    pollfd p{in, POLLIN, 0};
    // Bounded so that a file created after the watch is still read.
    (void)::poll(&p, 1, std::min(d.RemainingMillisForPoll(), 200));
    char buf[4096];
    while (::read(in, buf, sizeof buf) > 0) {
    }
  }
  ::close(in);
  return found;
}

// One run of a program: its exit code and output.
inline sim::testing::ProgramResult RunTool(const std::vector<std::string>& argv,
                                           milliseconds deadline = kClusterWait) {
  auto r = sim::testing::RunProgram(argv, {}, deadline);
  BOOST_TEST_REQUIRE(r.ok(), r.status().ToString());
  return *r;
}

// The highest N such that "persisted N " was printed by vnvram-guest-demo.
inline int64_t LastPersisted(const std::string& transcript) {
  int64_t last = -1;
  size_t pos = 0;
  while ((pos = transcript.find("persisted ", pos)) != std::string::npos) {
    pos += 10;
    const size_t end = transcript.find_first_of(" \n", pos);
    auto n = ParseU64(transcript.substr(pos, end - pos));
    if (n.ok()) last = std::max<int64_t>(last, static_cast<int64_t>(*n));
  }
  return last;
}

class SimCluster {
 public:
  struct Node {
    std::string id;
    uint16_t port = 0;
    std::string dir;
    std::string vault_dir;
    std::string log_path;
    std::string key_file;  // with CurveZMQ
    std::string public_key;
    std::unique_ptr<sim::testing::XenstoredProcess> xenstored;
    std::unique_ptr<platform::Platform> dom0;
    std::unique_ptr<platform::XenStore> xs;
    std::unique_ptr<backend::testing::VnvramdProcess> daemon;

    std::string endpoint() const { return "tcp://127.0.0.1:" + std::to_string(port); }
    std::string sim_dir() const { return xenstored->socket_dir(); }
    std::string Dom0() const { return "sim:" + sim_dir() + ":0"; }
    std::string Dom1() const { return "sim:" + sim_dir() + ":1"; }
  };

  // What a start may change (hostile and refused-key cases).
  struct StartOptions {
    std::string cluster_file;  // default: the cluster's
    std::string key_file;      // default: the node's
    std::vector<std::string> extra_args;
  };

  // Picks ports, makes keys (with curve), writes the cluster file and
  // starts every host's xenstored. No vnvramd runs yet (StartAll()).
  explicit SimCluster(ClusterSpec spec) : spec_(std::move(spec)) {
    char tmpl[] = "/tmp/vnvram-repl-test-XXXXXX";
    BOOST_TEST_REQUIRE(::mkdtemp(tmpl) != nullptr);
    scratch_ = tmpl;
    const std::vector<uint16_t> ports = PickFreePorts(spec_.hosts.size());
    for (size_t i = 0; i < spec_.hosts.size(); ++i) {
      auto n = std::make_unique<Node>();
      n->id = spec_.hosts[i];
      n->port = ports[i];
      n->dir = scratch_ + "/" + n->id;
      n->vault_dir = n->dir + "/vault";
      n->log_path = n->dir + "/vnvramd.log";
      std::filesystem::create_directories(n->vault_dir);
      if (spec_.curve) {
        n->key_file = n->dir + "/host.key";
        n->public_key = Keygen(n->key_file);
      }
      auto xs = sim::testing::XenstoredProcess::Start({1});
      BOOST_TEST_REQUIRE(xs.ok(), xs.status().ToString());
      n->xenstored = std::move(xs).value();
      auto p = platform::OpenPlatform(n->Dom0());
      BOOST_TEST_REQUIRE(p.ok(), p.status().ToString());
      n->dom0 = std::move(p).value();
      auto x = n->dom0->OpenXenStore();
      BOOST_TEST_REQUIRE(x.ok(), x.status().ToString());
      n->xs = std::move(x).value();
      nodes_.push_back(std::move(n));
    }
    cluster_file_ = scratch_ + "/cluster.json";
    WriteClusterFile(cluster_file_, {});
  }

  ~SimCluster() {
    for (auto& n : nodes_) n->daemon.reset();
    for (auto& n : nodes_) {
      n->xs.reset();
      n->dom0.reset();
      n->xenstored.reset();
    }
    if (std::getenv("VNVRAM_KEEP_TEST_DIR") == nullptr) {
      std::error_code ec;
      std::filesystem::remove_all(scratch_, ec);
    } else {
      BOOST_TEST_MESSAGE("kept " << scratch_);
    }
  }

  SimCluster(const SimCluster&) = delete;
  SimCluster& operator=(const SimCluster&) = delete;

  const std::string& scratch() const { return scratch_; }
  const std::string& cluster_file() const { return cluster_file_; }
  const ClusterSpec& spec() const { return spec_; }

  Node& node(const std::string& id) {
    for (auto& n : nodes_) {
      if (n->id == id) return *n;
    }
    BOOST_FAIL("no host " << id);
    return *nodes_.front();
  }

  // The cluster file with `public_key_override` (host -> key) applied:
  // what a host with another key believes.
  void WriteClusterFile(const std::string& path,
                        const std::map<std::string, std::string>& public_key_override) const {
    nlohmann::json j;
    j["version"] = 1;
    j["settings"] = {{"heartbeat-interval-ms", spec_.heartbeat_interval_ms},
                     {"peer-expiry-ms", spec_.peer_expiry_ms},
                     {"resync-chunk-size", spec_.resync_chunk}};
    j["hosts"] = nlohmann::json::array();
    for (const auto& n : nodes_) {
      nlohmann::json h = {{"id", n->id}, {"endpoint", n->endpoint()}};
      if (spec_.curve) {
        auto it = public_key_override.find(n->id);
        h["public-key"] = it != public_key_override.end() ? it->second : n->public_key;
      }
      j["hosts"].push_back(std::move(h));
    }
    j["volumes"] = nlohmann::json::array();
    for (const VolumeSpec& v : spec_.volumes) {
      j["volumes"].push_back({{"uuid", v.uuid},
                              {"name", v.name},
                              {"size", v.size},
                              {"replicas", v.replicas},
                              {"policy", v.policy}});
    }
    std::ofstream f(path);
    f << j.dump(2) << "\n";
    BOOST_TEST_REQUIRE(f.good(), "cannot write " << path);
  }

  // nvram-tool keygen --out FILE; returns the public key it printed.
  static std::string Keygen(const std::string& file) {
    auto r = RunTool({ClusterBin("nvram-tool"), "keygen", "--out", file});
    BOOST_TEST_REQUIRE(r.exit_code == 0, r.out);
    std::string key = r.out.substr(0, r.out.find('\n'));
    BOOST_TEST_REQUIRE(key.size() == 40u, r.out);
    return key;
  }

  // Starts vnvramd of `id` and waits for its ready byte (it has bound its
  // endpoint and published its replication state by then).
  void Start(const std::string& id, const StartOptions& o = {}) {
    Node& n = node(id);
    BOOST_TEST_REQUIRE(!n.daemon, "vnvramd of " << id << " already runs");
    auto p = TryStart(id, o);
    BOOST_TEST_REQUIRE(p.ok(), p.status().ToString());
    n.daemon = std::move(p).value();
  }

  Result<std::unique_ptr<backend::testing::VnvramdProcess>> TryStart(const std::string& id,
                                                                     const StartOptions& o = {}) {
    Node& n = node(id);
    backend::testing::VnvramdProcess::Options opt;
    opt.sim_dir = n.sim_dir();
    opt.self = 0;
    opt.vault_dir = n.vault_dir;
    opt.log_path = n.log_path;
    opt.extra_args = {"--cluster",
                      o.cluster_file.empty() ? cluster_file_ : o.cluster_file,
                      "--host-id",
                      n.id,
                      "--persist-timeout-ms",
                      std::to_string(spec_.persist_timeout_ms)};
    const std::string key = o.key_file.empty() ? n.key_file : o.key_file;
    if (!key.empty()) {
      opt.extra_args.push_back("--key-file");
      opt.extra_args.push_back(key);
    }
    if (std::find(spec_.replica_only.begin(), spec_.replica_only.end(), id) !=
        spec_.replica_only.end()) {
      opt.extra_args.push_back("--replica-only");
    }
    for (const auto& a : o.extra_args) opt.extra_args.push_back(a);
    // A marker in the shared log: where this instance's lines begin.
    {
      std::ofstream f(n.log_path, std::ios::app);
      f << "==== test: starting vnvramd of host " << id << " ====\n";
    }
    return backend::testing::VnvramdProcess::Start(opt);
  }

  void StartAll() {
    for (auto& n : nodes_) Start(n->id);
  }

  // SIGKILL (a crash: no vault, no clean mark).
  void Kill(const std::string& id) {
    Node& n = node(id);
    BOOST_TEST_REQUIRE(n.daemon != nullptr);
    n.daemon->Kill();
    n.daemon.reset();
  }

  // SIGTERM: vnvramd vaults every copy, marks it clean and exits 0.
  void Stop(const std::string& id) {
    Node& n = node(id);
    BOOST_TEST_REQUIRE(n.daemon != nullptr);
    auto rc = n.daemon->Stop(kClusterWait);
    BOOST_TEST_REQUIRE(rc.ok(), rc.status().ToString());
    BOOST_TEST(*rc == 0, "vnvramd of " << id << " exited " << *rc << "\n" << Log(id));
    n.daemon.reset();
  }

  void Signal(const std::string& id, int sig) {
    Node& n = node(id);
    BOOST_TEST_REQUIRE(n.daemon != nullptr);
    BOOST_TEST_REQUIRE(n.daemon->Signal(sig).ok());
  }

  // vnvramd of `id` runs (not exited, not a zombie).
  bool Alive(const std::string& id) {
    Node& n = node(id);
    if (n.daemon == nullptr) return false;
    const std::string stat = ReadWholeFile("/proc/" + std::to_string(n.daemon->pid()) + "/stat");
    const size_t paren = stat.rfind(')');
    return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] != 'Z';
  }

  std::string Log(const std::string& id) { return ReadWholeFile(node(id).log_path); }

  // Every host's log, for failure messages.
  std::string Logs() {
    std::string all;
    for (auto& n : nodes_) {
      std::string l = ReadWholeFile(n->log_path);
      if (l.size() > 6000) l = "...\n" + l.substr(l.size() - 6000);
      all += "---- vnvramd " + n->id + " ----\n" + l;
    }
    return all;
  }

  // ---- xenstore of a host ----

  std::string Read(const std::string& id, const std::string& path) {
    auto v = node(id).xs->Read(platform::kNoTx, path);
    return v.ok() ? *v : std::string();
  }
  std::string Repl(const std::string& id, const std::string& volume, std::string_view key) {
    return Read(id, schema::ReplicationKey(0, ParseUuid(volume).value(), key));
  }
  uint64_t ReplU64(const std::string& id, const std::string& volume, std::string_view key) {
    return ParseU64(Repl(id, volume, key)).value_or(0);
  }
  std::string PeerState(const std::string& id, const std::string& peer) {
    return Read(id, schema::DaemonKey(0, schema::daemon::PeerState(peer)));
  }
  std::string ReplicaState(const std::string& primary, const std::string& volume,
                           const std::string& replica) {
    return Repl(primary, volume, schema::repl::ReplicaState(replica));
  }

  // Waits until `pred` holds; re-evaluated on every xenstore event of any
  // host's vnvram directory, and at least every 50 ms. On timeout: a test
  // failure naming `what`, with every host's log, and false.
  bool WaitFor(const std::string& what, const std::function<bool()>& pred,
               milliseconds deadline = kClusterWait) {
    static uint64_t serial = 0;
    const std::string token = "cluster-wait-" + std::to_string(++serial);
    const std::string path = schema::DomainVnvramDir(0);
    std::vector<Node*> watched;
    for (auto& n : nodes_) {
      if (n->xs->Watch(path, token).ok()) watched.push_back(n.get());
    }
    const Deadline d(SystemClock::Instance(), deadline);
    bool ok = false;
    for (;;) {
      if (pred()) {
        ok = true;
        break;
      }
      if (d.Expired()) break;
      std::vector<pollfd> fds;
      fds.reserve(watched.size());
      for (Node* n : watched) fds.push_back({n->xs->WatchFd(), POLLIN, 0});
      (void)::poll(fds.data(), fds.size(), std::min(d.RemainingMillisForPoll(), 50));
      for (Node* n : watched) {
        for (;;) {
          auto ev = n->xs->ReadWatch();
          if (!ev.ok() || !ev->has_value()) break;
        }
      }
    }
    for (Node* n : watched) (void)n->xs->Unwatch(path, token);
    if (!ok) BOOST_ERROR("timed out waiting for " << what << "\n" << Logs());
    return ok;
  }

  // `primary` is primary of `volume`, serving, and every other replica
  // is in sync.
  bool Healthy(const std::string& primary, const VolumeSpec& v) {
    if (Repl(primary, v.uuid, schema::repl::kRole) != schema::repl::kRolePrimary) return false;
    if (Repl(primary, v.uuid, schema::repl::kServing) != "1") return false;
    for (const std::string& h : v.replicas) {
      if (h == primary) continue;
      if (ReplicaState(primary, v.uuid, h) != schema::repl::kReplicaStateInSync) return false;
    }
    return true;
  }
  void WaitHealthy(const std::string& primary, const VolumeSpec& v,
                   milliseconds deadline = kClusterWait) {
    BOOST_TEST_REQUIRE(WaitFor(
        primary + " primary of " + v.name + " with every replica in sync",
        [&] { return Healthy(primary, v); }, deadline));
  }

  // ---- tools on a host ----

  sim::testing::ProgramResult Tool(const std::string& id, std::vector<std::string> args,
                                   milliseconds deadline = kClusterWait) {
    std::vector<std::string> argv{ClusterBin("nvram-tool"), "--platform", node(id).Dom0()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunTool(argv, deadline);
  }

  // `nvram-tool status --json` of a host.
  nlohmann::json StatusJson(const std::string& id) {
    auto r = Tool(id, {"status", "--json"});
    BOOST_TEST_REQUIRE(r.exit_code == 0, r.out);
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    BOOST_TEST_REQUIRE(!j.is_discarded(), r.out);
    return j;
  }

  void Attach(const std::string& id, const VolumeSpec& v, uint32_t devid = 0) {
    auto r = Tool(id, {"attach", "1", "--backend", "0", "--devid", std::to_string(devid), "--size",
                       std::to_string(v.size), "--volume", v.uuid});
    BOOST_TEST_REQUIRE(r.exit_code == 0, r.out);
  }

  // vnvram-guest-demo as domain 1 of host `id`.
  std::unique_ptr<ChildProcess> Guest(const std::string& id, std::vector<std::string> args) {
    std::vector<std::string> argv{ClusterBin("vnvram-guest-demo"), "--platform", node(id).Dom1()};
    argv.insert(argv.end(), args.begin(), args.end());
    auto c = ChildProcess::Spawn(argv);
    BOOST_TEST_REQUIRE(c.ok(), c.status().ToString());
    return std::move(c).value();
  }

  // Runs a guest command to completion; its exit code (output in *out).
  int RunGuest(const std::string& id, std::vector<std::string> args, std::string* out = nullptr) {
    auto g = Guest(id, std::move(args));
    auto rc = g->Wait(kClusterWait);
    BOOST_TEST_REQUIRE(rc.ok(), rc.status().ToString() + "\n" + g->transcript());
    if (out != nullptr) *out = g->transcript();
    if (*rc != 0) BOOST_TEST_MESSAGE("guest on " << id << ":\n" << g->transcript());
    return *rc;
  }

  // ---- copies (INSPECT over ZeroMQ) ----

  // `key_file` defaults to the host's own key (with CurveZMQ);
  // `cluster_file` to the cluster's.
  Result<tools::InspectOutcome> Inspect(const std::string& id, const std::string& volume,
                                        uint64_t offset, uint32_t length,
                                        const std::string& key_file = "",
                                        const std::string& cluster_file = "") {
    tools::InspectSpec s;
    s.cluster_file = cluster_file.empty() ? cluster_file_ : cluster_file;
    s.host = id;
    s.key_file = key_file.empty() ? node(id).key_file : key_file;
    s.volume = ParseUuid(volume).value();
    s.offset = offset;
    s.length = length;
    s.timeout = milliseconds(5000);
    return tools::Inspect(s);
  }

  struct CopyDigest {
    std::vector<uint32_t> crcs;  // per 1 MiB piece
    std::vector<uint64_t> sequences;
    std::vector<uint64_t> epochs;
    bool operator==(const CopyDigest&) const = default;
  };
  // The crc32c of each 1 MiB piece of host `id`'s copy, with the (epoch,
  // sequence) each INSPECT_REPLY reported.
  Result<CopyDigest> Digest(const std::string& id, const VolumeSpec& v,
                            const std::string& key_file = "", const std::string& cluster = "") {
    CopyDigest d;
    for (uint64_t off = 0; off < v.size; off += 1 << 20) {
      const auto len = static_cast<uint32_t>(std::min<uint64_t>(1 << 20, v.size - off));
      auto r = Inspect(id, v.uuid, off, len, key_file, cluster);
      if (!r.ok()) return r.status();
      if (r->data.size() != len) {
        return Status::OutOfRange(id + " returned " + std::to_string(r->data.size()) +
                                  " bytes at offset " + std::to_string(off));
      }
      d.crcs.push_back(r->crc32c);
      d.sequences.push_back(r->sequence);
      d.epochs.push_back(r->epoch);
    }
    return d;
  }

  // Every host of `v` holds the same bytes at the same (epoch, sequence)
  // as `primary`'s copy, at the primary's published sequence.
  bool CopiesIdentical(const std::string& primary, const VolumeSpec& v, std::string* why) {
    auto want = Digest(primary, v);
    if (!want.ok()) {
      *why = want.status().ToString();
      return false;
    }
    for (const std::string& h : v.replicas) {
      if (h == primary) continue;
      auto got = Digest(h, v);
      if (!got.ok()) {
        *why = got.status().ToString();
        return false;
      }
      if (!(*got == *want)) {
        std::ostringstream s;
        s << h << " differs from " << primary << ": crc " << std::hex << got->crcs[0] << " vs "
          << want->crcs[0] << std::dec << ", sequence " << got->sequences[0] << " vs "
          << want->sequences[0] << ", epoch " << got->epochs[0] << " vs " << want->epochs[0];
        *why = s.str();
        return false;
      }
    }
    return true;
  }
  void WaitCopiesIdentical(const std::string& primary, const VolumeSpec& v,
                           milliseconds deadline = kClusterWait) {
    std::string why;
    BOOST_TEST_REQUIRE(WaitFor(
                           "identical copies of " + v.name,
                           [&] { return CopiesIdentical(primary, v, &why); }, deadline),
                       why);
  }

 private:
  ClusterSpec spec_;
  std::string scratch_;
  std::string cluster_file_;
  std::vector<std::unique_ptr<Node>> nodes_;
};

}  // namespace vnvram::testing
