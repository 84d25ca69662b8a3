// MultipathHost: test support for the multipath tests: one simulated Xen
// host whose vnvram-xenstored serves a guest (domain 1) and several backend
// domains, one vnvramd per backend domain (dom0 and driver domains), each a
// host of the cluster file, so that one volume's replica group spans them
// and the guest reaches the volume over one path per serving backend. A
// backend domain may serve no path (a plain replica). Helpers attach paths
// with nvram-tool, run vnvram-guest-demo and nvram-tool, read the multipath
// and replication keys, and wait on xenstore events (re-checked every
// 50 ms). Uses Boost.Test assertions; one object per test case.
#pragma once

#include <poll.h>

#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/replication_cluster.h"

namespace vnvram::testing {

struct BackendSpec {
  std::string id;  // host id in the cluster file
  DomId domid = 0;
};

struct MultipathSpec {
  std::vector<BackendSpec> backends = {{"a0", 0}, {"a1", 2}, {"w", 3}};
  VolumeSpec volume{"6a1e0c55-7d0b-4f6e-9c4a-2b7d9e1f3a50", "journal", 1 << 20, {"a0", "a1", "w"}};
  uint32_t heartbeat_interval_ms = 50;
  uint32_t peer_expiry_ms = 500;
  std::string resync_chunk = "64K";
  uint32_t persist_timeout_ms = 3000;
};

class MultipathHost {
 public:
  struct Backend {
    BackendSpec spec;
    uint16_t port = 0;
    std::string vault_dir;
    std::string log_path;
    std::unique_ptr<backend::testing::VnvramdProcess> daemon;
  };

  explicit MultipathHost(MultipathSpec spec) : spec_(std::move(spec)) {
    char tmpl[] = "/tmp/vnvram-mp-test-XXXXXX";
    BOOST_TEST_REQUIRE(::mkdtemp(tmpl) != nullptr);
    scratch_ = tmpl;
    std::vector<DomId> domains = {1};
    for (const BackendSpec& b : spec_.backends) {
      if (b.domid != 0) domains.push_back(b.domid);
    }
    auto xs = sim::testing::XenstoredProcess::Start(domains);
    BOOST_TEST_REQUIRE(xs.ok(), xs.status().ToString());
    xenstored_ = std::move(xs).value();
    auto p = platform::OpenPlatform(Dom(0));
    BOOST_TEST_REQUIRE(p.ok(), p.status().ToString());
    dom0_ = std::move(p).value();
    auto x = dom0_->OpenXenStore();
    BOOST_TEST_REQUIRE(x.ok(), x.status().ToString());
    xs_ = std::move(x).value();
    const std::vector<uint16_t> ports = PickFreePorts(spec_.backends.size());
    for (size_t i = 0; i < spec_.backends.size(); ++i) {
      auto b = std::make_unique<Backend>();
      b->spec = spec_.backends[i];
      b->port = ports[i];
      b->vault_dir = scratch_ + "/" + b->spec.id + "/vault";
      b->log_path = scratch_ + "/" + b->spec.id + "/vnvramd.log";
      std::filesystem::create_directories(b->vault_dir);
      backends_.push_back(std::move(b));
    }
    cluster_file_ = scratch_ + "/cluster.json";
    WriteClusterFile();
  }

  ~MultipathHost() {
    for (auto& b : backends_) b->daemon.reset();
    xs_.reset();
    dom0_.reset();
    xenstored_.reset();
    if (std::getenv("VNVRAM_KEEP_TEST_DIR") == nullptr) {
      std::error_code ec;
      std::filesystem::remove_all(scratch_, ec);
    } else {
      BOOST_TEST_MESSAGE("kept " << scratch_);
    }
  }

  MultipathHost(const MultipathHost&) = delete;
  MultipathHost& operator=(const MultipathHost&) = delete;

  const MultipathSpec& spec() const { return spec_; }
  const std::string& cluster_file() const { return cluster_file_; }
  const std::string& volume() const { return spec_.volume.uuid; }
  Uuid volume_uuid() const { return ParseUuid(spec_.volume.uuid).value(); }
  std::string Dom(DomId d) const {
    return "sim:" + xenstored_->socket_dir() + ":" + std::to_string(d);
  }

  Backend& backend(const std::string& id) {
    for (auto& b : backends_) {
      if (b->spec.id == id) return *b;
    }
    BOOST_FAIL("no backend " << id);
    return *backends_.front();
  }

  void Start(const std::string& id) {
    Backend& b = backend(id);
    BOOST_TEST_REQUIRE(!b.daemon, "vnvramd " << id << " already runs");
    backend::testing::VnvramdProcess::Options o;
    o.sim_dir = xenstored_->socket_dir();
    o.self = b.spec.domid;
    o.vault_dir = b.vault_dir;
    o.log_path = b.log_path;
    o.extra_args = {"--cluster", cluster_file_,          "--host-id",
                    id,          "--persist-timeout-ms", std::to_string(spec_.persist_timeout_ms)};
    {
      std::ofstream f(b.log_path, std::ios::app);
      f << "==== test: starting vnvramd " << id << " ====\n";
    }
    auto d = backend::testing::VnvramdProcess::Start(o);
    BOOST_TEST_REQUIRE(d.ok(), d.status().ToString());
    b.daemon = std::move(d).value();
  }
  void StartAll() {
    for (auto& b : backends_) Start(b->spec.id);
  }
  // SIGTERM, as systemctl stop does: vnvramd vaults and exits 0.
  void Stop(const std::string& id) {
    Backend& b = backend(id);
    BOOST_TEST_REQUIRE(b.daemon != nullptr);
    auto rc = b.daemon->Stop();
    BOOST_TEST_REQUIRE(rc.ok(), rc.status().ToString());
    BOOST_TEST(*rc == 0, "vnvramd " << id << " exited with " << *rc << "\n" << b.daemon->Log());
    b.daemon.reset();
  }
  // SIGKILL: a crash of the backend daemon.
  void Kill(const std::string& id) {
    Backend& b = backend(id);
    BOOST_TEST_REQUIRE(b.daemon != nullptr);
    b.daemon->Kill();
    b.daemon.reset();
  }

  // nvram-tool attach of path `dev` served by `backend_domid`.
  void Attach(DevId dev, DomId backend_domid, uint32_t priority) {
    auto r = Tool({"attach", "1", "--backend", std::to_string(backend_domid), "--devid",
                   std::to_string(dev), "--size", std::to_string(spec_.volume.size), "--volume",
                   volume(), "--priority", std::to_string(priority)});
    BOOST_TEST_REQUIRE(r.exit_code == 0, r.out);
  }

  sim::testing::ProgramResult Tool(std::vector<std::string> args,
                                   milliseconds deadline = kClusterWait) {
    std::vector<std::string> argv{ClusterBin("nvram-tool"), "--platform", Dom(0)};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunTool(argv, deadline);
  }

  // vnvram-guest-demo in the guest, opening the volume by UUID.
  std::unique_ptr<ChildProcess> Guest(std::vector<std::string> args) {
    std::vector<std::string> argv{ClusterBin("vnvram-guest-demo"),
                                  "--platform",
                                  Dom(1),
                                  "--volume",
                                  volume(),
                                  "--timeout-ms",
                                  "20000",
                                  "--log-level",
                                  "info"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto c = ChildProcess::Spawn(argv);
    BOOST_TEST_REQUIRE(c.ok(), c.status().ToString());
    return std::move(c).value();
  }
  int RunGuest(std::vector<std::string> args, std::string* out = nullptr) {
    auto g = Guest(std::move(args));
    auto rc = g->Wait(kClusterWait);
    BOOST_TEST_REQUIRE(rc.ok(), rc.status().ToString());
    if (out != nullptr) *out = g->transcript();
    if (*rc != 0) BOOST_TEST_MESSAGE("guest output:\n" << g->transcript());
    return *rc;
  }

  void Write(const std::string& path, std::string_view value) {
    BOOST_TEST_REQUIRE(xs_->Write(platform::kNoTx, path, value).ok(), "write " << path);
  }
  std::string Read(const std::string& path) {
    auto v = xs_->Read(platform::kNoTx, path);
    return v.ok() ? *v : std::string();
  }
  // A key of the guest's multipath directory of the volume.
  std::string Mp(std::string_view key) { return Read(schema::MultipathKey(1, volume_uuid(), key)); }
  std::string Repl(const std::string& id, std::string_view key) {
    return Read(schema::ReplicationKey(backend(id).spec.domid, volume_uuid(), key));
  }
  std::string PathRole(DevId dev) {
    return Read(schema::FrontendKey(1, dev, schema::fe::kPathRole));
  }

  // `id` is primary, serving, and every other replica is in sync.
  bool Healthy(const std::string& id) {
    namespace rk = schema::repl;
    if (Repl(id, rk::kRole) != rk::kRolePrimary || Repl(id, rk::kServing) != "1") return false;
    for (const std::string& h : spec_.volume.replicas) {
      if (h != id && Repl(id, rk::ReplicaState(h)) != rk::kReplicaStateInSync) return false;
    }
    return true;
  }
  void WaitHealthy(const std::string& id) {
    BOOST_TEST_REQUIRE(
        WaitFor(id + " primary with every replica in sync", [&] { return Healthy(id); }));
  }

  // Waits until `pred` holds: re-evaluated on every xenstore event of the
  // host and at least every 50 ms. On timeout: a failure with the logs.
  bool WaitFor(const std::string& what, const std::function<bool()>& pred,
               milliseconds deadline = kClusterWait) {
    static uint64_t serial = 0;
    const std::string token = "mp-wait-" + std::to_string(++serial);
    const bool watching = xs_->Watch(schema::kDomainRoot, token).ok();
    const Deadline d(SystemClock::Instance(), deadline);
    bool ok = false;
    for (;;) {
      if (pred()) {
        ok = true;
        break;
      }
      if (d.Expired()) break;
      pollfd fd{xs_->WatchFd(), POLLIN, 0};
      (void)::poll(&fd, 1, std::min(d.RemainingMillisForPoll(), 50));
      for (;;) {
        auto ev = xs_->ReadWatch();
        if (!ev.ok() || !ev->has_value()) break;
      }
    }
    if (watching) (void)xs_->Unwatch(schema::kDomainRoot, token);
    if (!ok) BOOST_ERROR("timed out waiting for " << what << "\n" << Logs());
    return ok;
  }

  std::string BackendLog(const std::string& id) { return ReadWholeFile(backend(id).log_path); }
  std::string Logs() {
    std::string all;
    for (auto& b : backends_) {
      std::string l = ReadWholeFile(b->log_path);
      if (l.size() > 5000) l = "...\n" + l.substr(l.size() - 5000);
      all += "---- vnvramd " + b->spec.id + " ----\n" + l;
    }
    return all;
  }

 private:
  void WriteClusterFile() {
    nlohmann::json j;
    j["version"] = 1;
    j["settings"] = {{"heartbeat-interval-ms", spec_.heartbeat_interval_ms},
                     {"peer-expiry-ms", spec_.peer_expiry_ms},
                     {"resync-chunk-size", spec_.resync_chunk}};
    j["hosts"] = nlohmann::json::array();
    for (const auto& b : backends_) {
      j["hosts"].push_back(
          {{"id", b->spec.id}, {"endpoint", "tcp://127.0.0.1:" + std::to_string(b->port)}});
    }
    const VolumeSpec& v = spec_.volume;
    j["volumes"] = nlohmann::json::array({{{"uuid", v.uuid},
                                           {"name", v.name},
                                           {"size", v.size},
                                           {"replicas", v.replicas},
                                           {"policy", v.policy}}});
    std::ofstream f(cluster_file_);
    f << j.dump(2) << "\n";
    BOOST_TEST_REQUIRE(f.good(), "cannot write " << cluster_file_);
  }

  MultipathSpec spec_;
  std::string scratch_;
  std::string cluster_file_;
  std::unique_ptr<sim::testing::XenstoredProcess> xenstored_;
  std::unique_ptr<platform::Platform> dom0_;
  std::unique_ptr<platform::XenStore> xs_;
  std::vector<std::unique_ptr<Backend>> backends_;
};

}  // namespace vnvram::testing
