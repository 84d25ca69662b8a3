// Multi-process tests of replication (issue 5): three simulated hosts on
// loopback (tests/replication_cluster.h), each with its own
// vnvram-xenstored and its own vnvramd; guests are vnvram-guest-demo
// processes or in-test frontends; copies are read back with INSPECT
// (nvram-tool inspect's code, and the binary itself). Every case checks
// bytes, not only exit codes. Every wait is on an event with a deadline
// (ready fd, xenstore watch, output line, inotify); nothing sleeps.
#define BOOST_TEST_MODULE replication_system
#include <signal.h>
#include <sys/stat.h>

#include <boost/test/unit_test.hpp>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "backend/replication/message.h"
#include "backend/replication/wire_format.h"
#include "backend/testing/vnvramd_harness.h"
#include "common/crc32c.h"
#include "common/endian.h"
#include "common/parse.h"
#include "tests/replication_cluster.h"
#include "xenstore-schema/schema.h"

namespace vnvram {
namespace {

using testing::kClusterWait;
using testing::LastPersisted;
using testing::SimCluster;
using testing::VolumeSpec;
namespace rk = schema::repl;
namespace dk = schema::daemon;
namespace repl = replication;

VolumeSpec Journal(uint64_t size = 1 << 20) {
  return VolumeSpec{
      "4c1f0d2e-7a3b-4e5c-8d9f-0a1b2c3d4e5f", "journal0", size, {"a", "b", "c"}, "sync"};
}

testing::ClusterSpec Spec(std::vector<VolumeSpec> volumes) {
  testing::ClusterSpec s;
  s.volumes = std::move(volumes);
  return s;
}

// The crc32c of `n` zero bytes.
uint32_t ZeroCrc(size_t n) {
  return Crc32c(std::vector<std::byte>(n));
}

// Starts the cluster and waits until host a is primary of every volume,
// serving, with b and c in sync.
void StartHealthy(SimCluster& c) {
  c.StartAll();
  for (const VolumeSpec& v : c.spec().volumes) c.WaitHealthy("a", v);
}

// ---------------------------------------------------------------------------
// 1. A sync acknowledgement means every in-sync replica holds the bytes.

BOOST_AUTO_TEST_CASE(SyncAckMeansEveryReplicaHoldsTheBytes) {
  const VolumeSpec vol = Journal();
  SimCluster c(Spec({vol}));
  StartHealthy(c);
  BOOST_TEST(c.Repl("a", vol.uuid, rk::kEpoch) == "1");

  // An in-test frontend on host a: it writes random bytes into the region
  // itself, so the expected content of every copy is known exactly.
  backend::testing::DeviceSpec dev;
  dev.frontend = 1;
  dev.dev = 0;
  dev.backend = 0;
  dev.volume = ParseUuid(vol.uuid).value();
  dev.size = vol.size;
  backend::testing::Toolstack ts(*c.node("a").xs);
  BOOST_TEST_REQUIRE(ts.Attach(dev).ok());
  auto fe = backend::testing::TestFrontend::Open(c.node("a").sim_dir(), dev);
  BOOST_TEST_REQUIRE(fe.ok(), fe.status().ToString());
  BOOST_TEST_REQUIRE((*fe)->Connect().ok(), c.Logs());
  std::span<std::byte> region = (*fe)->region();
  BOOST_TEST_REQUIRE(region.size() == vol.size);
  std::vector<std::byte> model(region.begin(), region.end());

  std::mt19937_64 rng(20240605);
  uint64_t last_durable = 0;
  for (int batch = 0; batch < 20; ++batch) {
    // A batch: several persists submitted at once (one group commit in
    // the backend), then a barrier that completes after all of them.
    struct Range {
      uint64_t offset, length;
    };
    std::vector<Range> ranges;
    const int k = 1 + static_cast<int>(rng() % 8);
    for (int i = 0; i < k; ++i) {
      const uint64_t len = 1 + rng() % (batch % 5 == 4 ? 200000 : 9000);
      const uint64_t off = rng() % (vol.size - len);
      for (uint64_t j = 0; j < len; ++j) {
        const auto b = static_cast<std::byte>(rng());
        region[off + j] = b;
        model[off + j] = b;
      }
      vnvramif_request r{};
      r.operation = VNVRAMIF_OP_PERSIST;
      r.offset = off;
      r.length = len;
      BOOST_TEST_REQUIRE((*fe)->ring().Submit(r).ok());
      ranges.push_back({off, len});
    }
    vnvramif_request barrier{};
    barrier.operation = VNVRAMIF_OP_BARRIER;
    auto b = (*fe)->Call(barrier);
    BOOST_TEST_REQUIRE(b.ok(), b.status().ToString());
    auto done = (*fe)->ring().Poll();
    BOOST_TEST_REQUIRE(done.ok(), done.status().ToString());
    BOOST_TEST_REQUIRE(done->size() == ranges.size());
    uint64_t durable = 0;
    for (const auto& comp : *done) {
      BOOST_TEST_REQUIRE(comp.status == VNVRAMIF_RSP_OKAY, "batch " << batch << "\n" << c.Logs());
      durable = std::max(durable, comp.durable_seq);
    }
    BOOST_TEST_REQUIRE(durable > last_durable);
    last_durable = durable;
    // Right after the acknowledgement, without waiting for anything: every
    // copy holds every byte of the batch, at a sequence covering it.
    for (const Range& r : ranges) {
      for (const std::string host : {"a", "b", "c"}) {
        for (uint64_t off = r.offset; off < r.offset + r.length; off += 1 << 20) {
          const auto len =
              static_cast<uint32_t>(std::min<uint64_t>(1 << 20, r.offset + r.length - off));
          auto got = c.Inspect(host, vol.uuid, off, len);
          BOOST_TEST_REQUIRE(got.ok(), got.status().ToString());
          BOOST_TEST_REQUIRE(got->epoch == 1u);
          BOOST_TEST_REQUIRE(got->sequence >= durable, host << " is at sequence " << got->sequence
                                                            << " < acknowledged " << durable);
          BOOST_TEST_REQUIRE(got->data.size() == len);
          BOOST_TEST_REQUIRE(std::memcmp(got->data.data(), model.data() + off, len) == 0,
                             host << "'s copy differs at [" << off << ", +" << len
                                  << ") right after the acknowledgement of batch " << batch);
        }
      }
    }
  }
  // The whole region, through the nvram-tool binary: the crc32c it prints
  // is the model's, on every host.
  char want[16];
  std::snprintf(want, sizeof want, "crc32c %08x", Crc32c(model));
  for (const std::string host : {"a", "b", "c"}) {
    auto r = testing::RunTool({testing::ClusterBin("nvram-tool"), "inspect", "--cluster",
                               c.cluster_file(), "--host", host, "--volume", vol.uuid, "--offset",
                               "0", "--length", "1M"});
    BOOST_TEST(r.exit_code == 0, r.out);
    BOOST_TEST(r.out.find(want) != std::string::npos, host << ": " << r.out << " want " << want);
    BOOST_TEST(
        r.out.find("epoch 1 sequence " + std::to_string(last_durable) + " ") != std::string::npos,
        r.out);
  }
}

// ---------------------------------------------------------------------------
// 2. kill -9 of a replica during a workload; restart; resync while writes
//    go on; identical copies; every acknowledged record there.

BOOST_AUTO_TEST_CASE(KilledReplicaResyncsWhileWritesContinue) {
  const VolumeSpec vol = Journal(2 << 20);
  SimCluster c(Spec({vol}));
  StartHealthy(c);
  c.Attach("a", vol);
  // 2 MiB holds 32704 records; the writer is stopped long before that.
  auto writer = c.Guest("a", {"write", "--count", "32000"});
  BOOST_TEST_REQUIRE(writer->WaitForLine("persisted 200 ", kClusterWait).ok(), c.Logs());

  c.Kill("c");
  // Writes go on with a and b (a majority); a sees c go.
  BOOST_TEST_REQUIRE(writer->WaitForLine("persisted 600 ", kClusterWait).ok(), c.Logs());
  BOOST_TEST_REQUIRE(c.WaitFor("a to mark c not in sync", [&] {
    return c.ReplicaState("a", vol.uuid, "c") != rk::kReplicaStateInSync;
  }));

  // c comes back from nothing (no vault: it was killed): it does not vouch
  // and is resynchronised in full while the writer goes on.
  c.Start("c");
  BOOST_TEST(c.Log("c").find("not vouching (needs a resync)") != std::string::npos, c.Log("c"));
  BOOST_TEST_REQUIRE(c.WaitFor("c back in sync on a", [&] {
    return c.ReplicaState("a", vol.uuid, "c") == rk::kReplicaStateInSync;
  }));
  const int64_t at_sync = LastPersisted(writer->transcript());
  // The writer was still writing through the resync.
  BOOST_TEST_REQUIRE(writer->transcript().find("done ") == std::string::npos,
                     "the writer finished before the resync did; make it longer");
  BOOST_TEST_REQUIRE(
      writer->WaitForLine("persisted " + std::to_string(at_sync + 300) + " ", kClusterWait).ok(),
      c.Logs());
  // The workload ends (the guest is killed; its last persist may be in
  // flight, which is fine: it is not acknowledged).
  BOOST_TEST_REQUIRE(writer->Kill().ok());
  (void)writer->Wait(kClusterWait);
  const int64_t acked = LastPersisted(writer->transcript());
  BOOST_TEST(writer->transcript().find("error") == std::string::npos, writer->transcript());

  // Three identical copies (crc32c of each 1 MiB piece, same epoch and
  // sequence), once the last in-flight persist settled.
  c.WaitCopiesIdentical("a", vol);
  BOOST_TEST(c.WaitFor("a healthy", [&] { return c.Healthy("a", vol); }));
  // Every acknowledged record verifies on a.
  std::string out;
  BOOST_TEST(c.RunGuest("a", {"verify", "--count", std::to_string(acked + 1)}, &out) == 0, out);
  BOOST_TEST(out.find("verified " + std::to_string(acked + 1)) != std::string::npos, out);
}

// ---------------------------------------------------------------------------
// 3. A stale primary is fenced after a promotion elsewhere.

BOOST_AUTO_TEST_CASE(StalePrimaryIsFencedAfterPromotion) {
  const VolumeSpec vol = Journal();
  SimCluster c(Spec({vol}));
  StartHealthy(c);
  c.Attach("a", vol);
  auto writer = c.Guest("a", {"write", "--count", "400", "--pause-after", "200"});
  BOOST_TEST_REQUIRE(writer->WaitForLine("paused 199", kClusterWait).ok(), c.Logs());

  // A partition: a's vnvramd stops, and stays stopped until b and c have
  // declared it down (so nothing b sends during the promotion reaches a).
  c.Signal("a", SIGSTOP);
  BOOST_TEST_REQUIRE(c.WaitFor("b and c to see a down", [&] {
    return c.PeerState("b", "a") == dk::kPeerStateDown &&
           c.PeerState("c", "a") == dk::kPeerStateDown;
  }));
  auto p = c.Tool("b", {"promote", "--volume", vol.uuid, "--timeout-ms", "20000"});
  BOOST_TEST_REQUIRE(p.exit_code == 0, p.out << c.Logs());
  BOOST_TEST(p.out.find(": ok") != std::string::npos, p.out);
  BOOST_TEST(c.Repl("b", vol.uuid, rk::kEpoch) == "2");
  BOOST_TEST(c.Repl("b", vol.uuid, rk::kRole) == rk::kRolePrimary);

  // a comes back believing it is primary of epoch 1; its guest persists.
  c.Signal("a", SIGCONT);
  BOOST_TEST_REQUIRE(writer->WriteStdin("go\n").ok());
  auto rc = writer->Wait(kClusterWait);
  BOOST_TEST_REQUIRE(rc.ok());
  BOOST_TEST(*rc == 1, writer->transcript());
  BOOST_TEST(writer->transcript().find("error persist of record 200") != std::string::npos,
             writer->transcript());
  BOOST_TEST(LastPersisted(writer->transcript()) == 199);
  BOOST_TEST_REQUIRE(c.WaitFor("a fenced or replica at epoch >= 2", [&] {
    const std::string role = c.Repl("a", vol.uuid, rk::kRole);
    return (role == rk::kRoleFenced || role == rk::kRoleReplica) &&
           c.ReplU64("a", vol.uuid, rk::kEpoch) >= 2;
  }));

  // b serves: a guest on b sees every record a had acknowledged, and
  // writes more.
  c.Attach("b", vol);
  std::string out;
  BOOST_TEST(c.RunGuest("b", {"verify", "--count", "200"}, &out) == 0, out);
  BOOST_TEST(c.RunGuest("b", {"write", "--from", "200", "--count", "100"}, &out) == 0, out);
  BOOST_TEST(c.RunGuest("b", {"verify", "--count", "300"}, &out) == 0, out);
  // a's copy converges to b's (and c's).
  c.WaitCopiesIdentical("b", vol);
  BOOST_TEST(c.Repl("b", vol.uuid, rk::kRole) == rk::kRolePrimary);
  // At b's epoch: 2, or later when the stale side's guest asked a to take
  // over meanwhile (refused by the majority; b may then re-assert itself
  // with a newer epoch; docs/multipath.md, "Limits").
  BOOST_TEST(c.WaitFor("a's published copy at b's epoch",
                       [&] {
                         const std::string e = c.Repl("b", vol.uuid, rk::kEpoch);
                         return c.Repl("b", vol.uuid, rk::kRole) == rk::kRolePrimary &&
                                c.Repl("a", vol.uuid, rk::kContentEpoch) == e;
                       }),
             c.Logs());
}

// 3b. The same partition, but the stale primary's guest stays idle: a must
// still learn of the newer epoch (b resyncs it) and converge.
BOOST_AUTO_TEST_CASE(IdleStalePrimaryStepsDownAndConverges) {
  const VolumeSpec vol = Journal();
  SimCluster c(Spec({vol}));
  StartHealthy(c);
  c.Attach("a", vol);
  std::string out;
  BOOST_TEST_REQUIRE(c.RunGuest("a", {"write", "--count", "100"}, &out) == 0, out);

  c.Signal("a", SIGSTOP);
  BOOST_TEST_REQUIRE(c.WaitFor("b and c to see a down", [&] {
    return c.PeerState("b", "a") == dk::kPeerStateDown &&
           c.PeerState("c", "a") == dk::kPeerStateDown;
  }));
  auto p = c.Tool("b", {"promote", "--volume", vol.uuid, "--timeout-ms", "20000"});
  BOOST_TEST_REQUIRE(p.exit_code == 0, p.out << c.Logs());
  c.Signal("a", SIGCONT);
  BOOST_TEST(c.WaitFor("idle a no longer primary",
                       [&] { return c.Repl("a", vol.uuid, rk::kRole) != rk::kRolePrimary; }));
  c.WaitCopiesIdentical("b", vol);
}

// ---------------------------------------------------------------------------
// 4. An async volume replicates, and its status says what it risks.

BOOST_AUTO_TEST_CASE(AsyncVolumeReplicatesAndStatusShowsItsRisk) {
  const VolumeSpec sync = Journal(256 << 10);
  const VolumeSpec async{
      "9e8d7c6b-5a49-4382-a716-f5e4d3c2b1a0", "cache0", 1 << 20, {"a", "b", "c"}, "async"};
  SimCluster c(Spec({sync, async}));
  StartHealthy(c);
  c.Attach("a", async, 1);
  std::string out;
  BOOST_TEST_REQUIRE(
      c.RunGuest("a", {"--devid", "1", "write", "--count", "1500", "--batch", "4"}, &out) == 0,
      out);
  BOOST_TEST(c.RunGuest("a", {"--devid", "1", "verify", "--count", "1500"}, &out) == 0, out);
  // The replicas converge (they apply what was queued, in order).
  c.WaitCopiesIdentical("a", async);
  // ... and publish it (the primary refreshes its own sequence key at the
  // statistics interval, the replicas as they apply).
  auto digest = c.Digest("a", async);
  BOOST_TEST_REQUIRE(digest.ok(), digest.status().ToString());
  const uint64_t seq = digest->sequences[0];
  BOOST_TEST(seq >= 1500u);
  BOOST_TEST(c.WaitFor("every host to publish sequence " + std::to_string(seq), [&] {
    for (const std::string h : {"a", "b", "c"}) {
      if (c.ReplU64(h, async.uuid, rk::kSequence) != seq) return false;
    }
    return true;
  }));

  auto j = c.StatusJson("a");
  BOOST_TEST(j["host_id"] == "a");
  bool seen_async = false, seen_sync = false;
  for (const auto& v : j["volumes"]) {
    const std::string risk = v["risk"];
    if (v["uuid"] == async.uuid) {
      seen_async = true;
      BOOST_TEST(v["policy"] == "async");
      BOOST_TEST(risk.find("async") != std::string::npos, risk);
      BOOST_TEST(risk.find("lost") != std::string::npos, risk);
      BOOST_TEST(v["role"] == "primary");
    } else if (v["uuid"] == sync.uuid) {
      seen_sync = true;
      BOOST_TEST(v["policy"] == "sync");
      BOOST_TEST(risk.find("majority") != std::string::npos, risk);
    }
  }
  BOOST_TEST(seen_async);
  BOOST_TEST(seen_sync);
  // The text form prints the risk line too.
  auto t = c.Tool("a", {"status"});
  BOOST_TEST(t.exit_code == 0, t.out);
  BOOST_TEST(t.out.find("risk: async:") != std::string::npos, t.out);
}

// ---------------------------------------------------------------------------
// 5. CurveZMQ: replication works with keys; a host whose key is not the
//    listed one gets no session and no data.

BOOST_AUTO_TEST_CASE(CurveKeysAdmitListedHostsAndRefuseOthers) {
  const VolumeSpec vol = Journal();
  testing::ClusterSpec spec = Spec({vol});
  spec.curve = true;
  SimCluster c(spec);
  const std::string rogue_key = c.scratch() + "/rogue.key";
  const std::string rogue_pub = SimCluster::Keygen(rogue_key);

  // With the real cluster file, vnvramd itself refuses a key file that is
  // not the one listed for its host.
  {
    SimCluster::StartOptions o;
    o.key_file = rogue_key;
    auto p = c.TryStart("c", o);
    BOOST_TEST_REQUIRE(!p.ok());
    BOOST_TEST(p.status().message().find("is not the one the cluster file lists for host c") !=
                   std::string::npos,
               p.status().ToString());
  }

  // a and b with their listed keys: a group of two (a majority of three).
  c.Start("a");
  c.Start("b");
  BOOST_TEST_REQUIRE(c.WaitFor("a primary, serving, b in sync", [&] {
    return c.Repl("a", vol.uuid, rk::kServing) == "1" &&
           c.ReplicaState("a", vol.uuid, "b") == rk::kReplicaStateInSync;
  }));

  // A host c that believes in another key for itself (its own cluster
  // file lists it): a and b refuse its key, so it never gets a session.
  const std::string rogue_cluster = c.scratch() + "/cluster-rogue.json";
  c.WriteClusterFile(rogue_cluster, {{"c", rogue_pub}});
  SimCluster::StartOptions o;
  o.key_file = rogue_key;
  o.cluster_file = rogue_cluster;
  c.Start("c", o);
  const std::string refused = "refused key " + rogue_pub.substr(0, 8);
  BOOST_TEST(testing::WaitForFileText(c.node("a").log_path, refused, kClusterWait), c.Log("a"));
  BOOST_TEST(testing::WaitForFileText(c.node("b").log_path, refused, kClusterWait), c.Log("b"));

  // Writes go on through a (acknowledged by a and b) ...
  c.Attach("a", vol);
  std::string out;
  BOOST_TEST_REQUIRE(c.RunGuest("a", {"write", "--count", "300", "--batch", "4"}, &out) == 0, out);
  auto on_b = c.Digest("b", vol);
  auto on_a = c.Digest("a", vol);
  BOOST_TEST_REQUIRE(on_a.ok(), on_a.status().ToString());
  BOOST_TEST_REQUIRE(on_b.ok(), on_b.status().ToString());
  BOOST_TEST((*on_a == *on_b));
  BOOST_TEST(on_a->crcs[0] != ZeroCrc(vol.size));
  // ... and none of it reached the refused host: its copy is empty, at
  // no epoch, and no peer counts it up.
  auto on_rogue = c.Digest("c", vol, rogue_key, rogue_cluster);
  BOOST_TEST_REQUIRE(on_rogue.ok(), on_rogue.status().ToString());
  BOOST_TEST(on_rogue->crcs[0] == ZeroCrc(vol.size));
  BOOST_TEST(on_rogue->sequences[0] == 0u);
  BOOST_TEST(on_rogue->epochs[0] == 0u);
  for (const std::string peer : {"a", "b"}) {
    const std::string st = c.PeerState(peer, "c");
    BOOST_TEST((st == dk::kPeerStateDown || st == dk::kPeerStateRefused), peer << ": " << st);
    BOOST_TEST(c.PeerState("c", peer) != dk::kPeerStateUp);
  }
  BOOST_TEST(c.ReplicaState("a", vol.uuid, "c") != rk::kReplicaStateInSync);
  BOOST_TEST(c.Repl("c", vol.uuid, rk::kPromise) == "0");

  // The real c (listed key) joins and catches up.
  c.Stop("c");
  c.Start("c");
  c.WaitHealthy("a", vol);
  c.WaitCopiesIdentical("a", vol);
  BOOST_TEST(c.PeerState("a", "c") == dk::kPeerStateUp);
}

// ---------------------------------------------------------------------------
// 6. Cold start of the whole cluster from its vaults.

BOOST_AUTO_TEST_CASE(ColdStartFromCleanVaultsFormsANewEpoch) {
  const VolumeSpec vol = Journal();
  SimCluster c(Spec({vol}));
  StartHealthy(c);
  c.Attach("a", vol);
  std::string out;
  BOOST_TEST_REQUIRE(c.RunGuest("a", {"write", "--count", "700", "--batch", "8"}, &out) == 0, out);
  BOOST_TEST(out.find("done records=700") != std::string::npos, out);
  auto before = c.Digest("a", vol);
  BOOST_TEST_REQUIRE(before.ok(), before.status().ToString());

  // SIGTERM everywhere: each vnvramd vaults its copy and marks it clean.
  for (const std::string h : {"a", "b", "c"}) c.Stop(h);
  for (const std::string h : {"a", "b", "c"}) {
    BOOST_TEST(c.Log(h).find("(clean)") != std::string::npos, c.Log(h));
  }
  // All three come back from their vaults; a (the first replica) proposes
  // a new epoch, which the others (vouching after a clean shutdown) accept.
  c.StartAll();
  c.WaitHealthy("a", vol);
  BOOST_TEST(c.ReplU64("a", vol.uuid, rk::kEpoch) == 2u);
  // (b and c publish their own promise as they take it.)
  BOOST_TEST(c.WaitFor("b and c to promise epoch 2", [&] {
    return c.ReplU64("b", vol.uuid, rk::kPromise) == 2u &&
           c.ReplU64("c", vol.uuid, rk::kPromise) == 2u;
  }));
  // Every acknowledged record verifies on the primary, and the copies are
  // the bytes they were before the shutdown.
  BOOST_TEST(c.RunGuest("a", {"verify", "--count", "700"}, &out) == 0, out);
  BOOST_TEST(out.find("verified 700") != std::string::npos, out);
  c.WaitCopiesIdentical("a", vol);
  auto after = c.Digest("a", vol);
  BOOST_TEST_REQUIRE(after.ok(), after.status().ToString());
  BOOST_TEST(after->crcs == before->crcs);
  // And the cluster takes new writes in the new epoch.
  BOOST_TEST(c.RunGuest("a", {"write", "--from", "700", "--count", "50"}, &out) == 0, out);
  BOOST_TEST(c.RunGuest("a", {"verify", "--count", "750"}, &out) == 0, out);
  c.WaitCopiesIdentical("a", vol);
}

// ---------------------------------------------------------------------------
// The cluster file fixes every endpoint (ports picked by SimCluster, see
// tests/replication_cluster.h): a port taken by someone else is a clear
// start-up error naming it, not a daemon that runs without replication.

BOOST_AUTO_TEST_CASE(TakenPortIsAClearStartupError) {
  const VolumeSpec vol = Journal();
  SimCluster c(Spec({vol}));
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  BOOST_TEST_REQUIRE(fd >= 0);
  const int one = 1;
  (void)::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(c.node("a").port);
  BOOST_TEST_REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  BOOST_TEST_REQUIRE(::listen(fd, 1) == 0);
  auto p = c.TryStart("a");
  ::close(fd);
  BOOST_TEST_REQUIRE(!p.ok(), "vnvramd started on a taken port");
  const std::string log = c.Log("a");
  BOOST_TEST(log.find("bind " + c.node("a").endpoint()) != std::string::npos, log);
  BOOST_TEST(log.find("Address already in use") != std::string::npos, log);
  // Once the port is free, the same host starts and the group forms.
  StartHealthy(c);
}

// Bad cluster and key files are configuration errors: one line naming the
// file and the bad value, exit 2, nothing started.
BOOST_AUTO_TEST_CASE(BadClusterOrKeyFileIsAConfigurationError) {
  char tmpl[] = "/tmp/vnvram-badcfg.XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  auto write = [&](const std::string& name, const std::string& text, mode_t mode) {
    std::string path = dir + "/" + name;
    FILE* f = std::fopen(path.c_str(), "w");
    BOOST_TEST_REQUIRE(f != nullptr);
    std::fputs(text.c_str(), f);
    std::fclose(f);
    ::chmod(path.c_str(), mode);
    return path;
  };
  const std::string bad_cluster = write(
      "cluster.json",
      R"({"version": 1, "hosts": [{"id": "a", "endpoint": "tcp://*:7401"}], "volumes": []})", 0644);
  const std::string good_cluster =
      write("good.json",
            R"({"version": 1, "hosts": [{"id": "a", "endpoint": "tcp://127.0.0.1:7401"}],
          "volumes": []})",
            0644);
  const std::string open_key = write("a.key", "public-key = x\nsecret-key = y\n", 0644);
  const std::vector<std::string> base = {vnvram::testing::ClusterBin("vnvramd"), "--platform",
                                         "sim:" + dir + ":0", "--vault-dir", dir + "/vault"};
  auto run = [&](std::vector<std::string> extra) {
    std::vector<std::string> argv = base;
    argv.insert(argv.end(), extra.begin(), extra.end());
    return vnvram::testing::RunTool(argv);
  };
  auto r = run({"--cluster", bad_cluster, "--host-id", "a"});
  BOOST_TEST(r.exit_code == 2, r.out);
  BOOST_TEST(r.out.find("tcp://*:7401") != std::string::npos, r.out);
  r = run({"--cluster", dir + "/missing.json", "--host-id", "a"});
  BOOST_TEST(r.exit_code == 2, r.out);
  BOOST_TEST(r.out.find("missing.json") != std::string::npos, r.out);
  r = run({"--cluster", good_cluster, "--host-id", "zz"});
  BOOST_TEST(r.exit_code == 2, r.out);
  BOOST_TEST(r.out.find("'zz'") != std::string::npos, r.out);
  r = run({"--cluster", good_cluster, "--host-id", "a", "--key-file", open_key});
  BOOST_TEST(r.exit_code == 2, r.out);
  BOOST_TEST(r.out.find("0644") != std::string::npos, r.out);
  r = run({"--cluster", good_cluster, "--host-id", "a", "--persist-spin-us", "1e3"});
  BOOST_TEST(r.exit_code == 2, r.out);
  BOOST_TEST(r.out.find("1e3") != std::string::npos, r.out);
  std::filesystem::remove_all(dir);
}

// ---------------------------------------------------------------------------
// 7. A hostile peer: garbage, truncated and oversize frames, requests
//    before HELLO, HELLO as an unknown host. The daemon answers INVALID,
//    keeps running, and replication between the real hosts goes on.

class RawPeer {
 public:
  RawPeer(const std::string& endpoint, const std::string& routing_id)
      : socket_(ctx_, zmq::socket_type::dealer) {
    socket_.set(zmq::sockopt::routing_id, routing_id);
    socket_.set(zmq::sockopt::linger, 0);
    socket_.connect(endpoint);
  }

  // Sends `parts` as one message; the decoded answer.
  Result<repl::Message> Exchange(const std::vector<repl::Bytes>& parts) {
    for (size_t i = 0; i < parts.size(); ++i) {
      socket_.send(zmq::message_t(parts[i].data(), parts[i].size()),
                   i + 1 < parts.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
    zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, std::chrono::milliseconds(10000));
    if ((item.revents & ZMQ_POLLIN) == 0) return Status::Timeout("no answer");
    zmq::message_t reply;
    (void)socket_.recv(reply, zmq::recv_flags::none);
    return repl::Decode(
        std::span<const std::byte>(static_cast<const std::byte*>(reply.data()), reply.size()));
  }
  Result<repl::Message> Exchange(const repl::Bytes& frame) {
    return Exchange(std::vector<repl::Bytes>{frame});
  }

 private:
  zmq::context_t ctx_;
  zmq::socket_t socket_;
};

repl::Bytes Raw(std::string_view s) {
  repl::Bytes b(s.size());
  std::memcpy(b.data(), s.data(), s.size());
  return b;
}

repl::Bytes Encoded(const repl::Message& m) {
  auto f = repl::Encode(m);
  BOOST_TEST_REQUIRE(f.ok(), f.status().ToString());
  return *f;
}

void ExpectInvalid(const Result<repl::Message>& m, repl::wire::InvalidReason want,
                   const std::string& what) {
  BOOST_TEST_REQUIRE(m.ok(), what << ": " << m.status().ToString());
  const auto* inv = std::get_if<repl::Invalid>(&*m);
  BOOST_TEST_REQUIRE(inv != nullptr, what << ": answered with another message");
  BOOST_TEST(static_cast<uint32_t>(inv->reason) == static_cast<uint32_t>(want),
             what << ": reason " << static_cast<uint32_t>(inv->reason) << " (" << inv->text << ")");
}

BOOST_AUTO_TEST_CASE(HostilePeerGetsInvalidAndReplicationGoesOn) {
  namespace wire = repl::wire;
  const VolumeSpec vol = Journal();
  SimCluster c(Spec({vol}));
  StartHealthy(c);
  c.Attach("a", vol);
  std::string out;
  BOOST_TEST_REQUIRE(c.RunGuest("a", {"write", "--count", "100"}, &out) == 0, out);
  c.WaitCopiesIdentical("a", vol);
  const Uuid uuid = ParseUuid(vol.uuid).value();

  for (const std::string target : {"a", "b"}) {
    auto before = c.Digest(target, vol);
    BOOST_TEST_REQUIRE(before.ok(), before.status().ToString());
    const std::string epoch_before = c.Repl(target, vol.uuid, rk::kPromise);
    RawPeer peer(c.node(target).endpoint(), "intruder-" + target);

    ExpectInvalid(peer.Exchange(Raw("this is not a replication frame at all")),
                  wire::InvalidReason::kMalformed, "garbage");
    ExpectInvalid(peer.Exchange(Raw("VN")), wire::InvalidReason::kMalformed, "short garbage");
    repl::Bytes empty;
    ExpectInvalid(peer.Exchange(empty), wire::InvalidReason::kMalformed, "empty frame");

    repl::Replicate r;
    r.volume = uuid;
    r.epoch = 1000;
    r.sequence = 1;
    r.offset = 4096;
    r.ack_requested = true;
    r.data.assign(4096, std::byte{0xee});
    const repl::Bytes replicate = Encoded(r);
    repl::Bytes truncated(replicate.begin(), replicate.end() - 100);
    ExpectInvalid(peer.Exchange(truncated), wire::InvalidReason::kMalformed, "truncated");
    repl::Bytes trailing = replicate;
    trailing.push_back(std::byte{0});
    ExpectInvalid(peer.Exchange(trailing), wire::InvalidReason::kMalformed, "trailing byte");
    repl::Bytes bad_version = replicate;
    bad_version[wire::kVersionOffset] = std::byte{2};
    ExpectInvalid(peer.Exchange(bad_version), wire::InvalidReason::kBadVersion, "version 2");
    repl::Bytes bad_crc = replicate;
    bad_crc.back() ^= std::byte{1};
    ExpectInvalid(peer.Exchange(bad_crc), wire::InvalidReason::kBadChecksum, "bad crc");
    // A header announcing 4 GiB, and a real frame of 2 MiB (above max-data).
    repl::Bytes huge_header(replicate.begin(), replicate.begin() + wire::kHeaderSize);
    StoreLE<uint32_t>(huge_header.data() + wire::kBodyLengthOffset, 0xfffffff0u);
    ExpectInvalid(peer.Exchange(huge_header), wire::InvalidReason::kOversize, "4 GiB header");
    repl::Bytes oversize(replicate.begin(), replicate.begin() + wire::kHeaderSize);
    oversize.resize(wire::kHeaderSize + (2u << 20), std::byte{0x5a});
    StoreLE<uint32_t>(oversize.data() + wire::kBodyLengthOffset, 2u << 20);
    ExpectInvalid(peer.Exchange(oversize), wire::InvalidReason::kOversize, "2 MiB frame");
    // Two parts in one message: the last one is the frame (garbage here).
    ExpectInvalid(peer.Exchange(std::vector<repl::Bytes>{replicate, Raw("tail garbage, 16+")}),
                  wire::InvalidReason::kMalformed, "two parts");

    // Well-formed requests without a session.
    ExpectInvalid(peer.Exchange(replicate), wire::InvalidReason::kNoSession,
                  "REPLICATE before HELLO");
    ExpectInvalid(peer.Exchange(Encoded(repl::EpochPropose{uuid, 1000, 1, 1, "b"})),
                  wire::InvalidReason::kNoSession, "EPOCH_PROPOSE before HELLO");
    ExpectInvalid(peer.Exchange(Encoded(repl::ResyncRequest{uuid, 1, 0, 65536})),
                  wire::InvalidReason::kNoSession, "RESYNC_REQUEST before HELLO");
    ExpectInvalid(peer.Exchange(Encoded(repl::Heartbeat{7, 1})), wire::InvalidReason::kNoSession,
                  "HEARTBEAT before HELLO");
    // HELLO as a host the cluster does not know, and as a real host from
    // a connection that is not that host's.
    ExpectInvalid(peer.Exchange(Encoded(repl::Hello{"mallory", 42, wire::kMaxData})),
                  wire::InvalidReason::kUnknownPeer, "HELLO as an unknown host");
    const std::string other = target == "a" ? "b" : "a";
    ExpectInvalid(peer.Exchange(Encoded(repl::Hello{other, 42, wire::kMaxData})),
                  wire::InvalidReason::kUnknownPeer, "HELLO as " + other);
    // ... and after those, still no session.
    ExpectInvalid(peer.Exchange(replicate), wire::InvalidReason::kNoSession,
                  "REPLICATE after a refused HELLO");
    // A burst of garbage: every frame is answered, nothing else changes.
    for (int i = 0; i < 40; ++i) {
      ExpectInvalid(peer.Exchange(Raw("garbage garbage garbage " + std::to_string(i))),
                    wire::InvalidReason::kMalformed, "burst");
    }
    // INSPECT is sessionless; an out-of-range one gets an empty reply.
    auto insp = peer.Exchange(Encoded(repl::Inspect{uuid, vol.size, 4096}));
    BOOST_TEST_REQUIRE(insp.ok(), insp.status().ToString());
    BOOST_TEST_REQUIRE(std::holds_alternative<repl::InspectReply>(*insp));
    BOOST_TEST(std::get<repl::InspectReply>(*insp).data.empty());

    BOOST_TEST_REQUIRE(c.Alive(target), c.Log(target));
    // Nothing of it was applied or promised.
    BOOST_TEST(c.Repl(target, vol.uuid, rk::kPromise) == epoch_before);
    auto after = c.Digest(target, vol);
    BOOST_TEST_REQUIRE(after.ok(), after.status().ToString());
    BOOST_TEST((*after == *before), target << "'s copy changed");
  }

  // Replication between the real hosts goes on.
  BOOST_TEST(c.Healthy("a", vol));
  BOOST_TEST(c.PeerState("a", "b") == dk::kPeerStateUp);
  BOOST_TEST(c.PeerState("b", "a") == dk::kPeerStateUp);
  BOOST_TEST_REQUIRE(c.RunGuest("a", {"write", "--from", "100", "--count", "100"}, &out) == 0, out);
  BOOST_TEST(c.RunGuest("a", {"verify", "--count", "200"}, &out) == 0, out);
  c.WaitCopiesIdentical("a", vol);
  BOOST_TEST(c.Repl("a", vol.uuid, rk::kEpoch) == "1");
}

}  // namespace
}  // namespace vnvram
