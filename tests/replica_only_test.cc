// vnvramd --replica-only (a witness): the replication engine alone, no
// xenstore, no guests. Three simulated hosts on loopback
// (tests/replication_cluster.h); host c runs --replica-only. It holds the
// replicated bytes like any replica, counts for the majority of a sync
// acknowledgement and of a promotion (so a group whose two guest-serving
// members are dom0 and a driver domain of one host survives the loss of
// either), and vaults its copy on SIGTERM with the clean mark. Every wait
// is on an event with a deadline.
#define BOOST_TEST_MODULE replica_only
#include <boost/test/unit_test.hpp>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "backend/replication/volume_state_file.h"
#include "backend/vault_file.h"
#include "common/crc32c.h"
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

VolumeSpec Journal() {
  return VolumeSpec{
      "5d2a8c1e-3f4b-4a6c-9e7d-1b2c3d4e5f60", "journal0", 1 << 20, {"a", "b", "c"}, "sync"};
}

// Hosts a and b are full daemons (a the first replica, so primary at
// start); c is the witness.
testing::ClusterSpec WitnessSpec(const VolumeSpec& vol) {
  testing::ClusterSpec s;
  s.volumes = {vol};
  s.replica_only = {"c"};
  return s;
}

BOOST_AUTO_TEST_CASE(WitnessHoldsTheReplicatedBytesAndVaultsThemOnStop) {
  const VolumeSpec vol = Journal();
  SimCluster c(WitnessSpec(vol));
  c.StartAll();
  c.WaitHealthy("a", vol);
  // The witness said what it is, and touched no xenstore: no daemon keys,
  // no replication directory on its host.
  BOOST_TEST(
      c.Log("c").find("replica-only: host c on " + c.node("c").endpoint()) != std::string::npos,
      c.Log("c"));
  BOOST_TEST(c.Read("c", schema::DaemonKey(0, dk::kHostId)).empty());
  BOOST_TEST(c.Repl("c", vol.uuid, rk::kRole).empty());
  // The primary sees it as a peer and an in-sync replica like b.
  BOOST_TEST(c.PeerState("a", "c") == dk::kPeerStateUp);

  c.Attach("a", vol);
  std::string out;
  BOOST_TEST_REQUIRE(c.RunGuest("a", {"write", "--count", "300", "--batch", "4"}, &out) == 0, out);
  BOOST_TEST_REQUIRE(LastPersisted(out) == 299, out);
  // Every copy, the witness's included, holds the same bytes at the same
  // (epoch, sequence).
  c.WaitCopiesIdentical("a", vol);
  auto primary = c.Inspect("a", vol.uuid, 0, static_cast<uint32_t>(vol.size));
  BOOST_TEST_REQUIRE(primary.ok(), primary.status().ToString());
  auto witness = c.Inspect("c", vol.uuid, 0, static_cast<uint32_t>(vol.size));
  BOOST_TEST_REQUIRE(witness.ok(), witness.status().ToString());
  BOOST_TEST_REQUIRE(witness->data.size() == vol.size);
  BOOST_TEST(std::memcmp(witness->data.data(), primary->data.data(), vol.size) == 0);
  BOOST_TEST(witness->sequence == primary->sequence);
  BOOST_TEST(primary->sequence > 0u);

  // SIGTERM: exit 0 after the final vault; the state file is marked clean
  // at the primary's position and the vault holds the primary's bytes.
  c.Stop("c");
  const std::string log = c.Log("c");
  BOOST_TEST(log.find("signal 15: stopping") != std::string::npos, log);
  BOOST_TEST(log.find("stopped") != std::string::npos, log);
  const std::string dir = c.node("c").vault_dir;
  const Uuid uuid = ParseUuid(vol.uuid).value();
  auto st = replication::ReadVolumeState(dir, uuid);
  BOOST_TEST_REQUIRE(st.ok(), st.status().ToString());
  BOOST_TEST_REQUIRE(st->has_value());
  BOOST_TEST((*st)->clean);
  BOOST_TEST((*st)->content_seq == primary->sequence);
  BOOST_TEST((*st)->content_epoch == primary->epoch);
  auto header = backend::ReadVaultHeader(dir, uuid, vol.size);
  BOOST_TEST_REQUIRE(header.ok(), header.status().ToString());
  std::vector<std::byte> vault(vol.size);
  BOOST_TEST_REQUIRE(backend::ReadVaultData(dir, *header, vault).ok());
  BOOST_TEST(Crc32c(vault) == Crc32c(primary->data));

  // The witness comes back from its clean vault, vouching, and the writes
  // go on with it in sync.
  c.Start("c");
  BOOST_TEST_REQUIRE(c.WaitFor("c in sync again", [&] {
    return c.ReplicaState("a", vol.uuid, "c") == rk::kReplicaStateInSync;
  }));
  BOOST_TEST(c.RunGuest("a", {"write", "--from", "300", "--count", "100"}, &out) == 0, out);
  c.WaitCopiesIdentical("a", vol);
}

// The witness makes the majority: with b gone, a's sync persists are
// acknowledged by a and c; with the primary a gone, b is promoted without
// --force (b and c are two of three) and serves every acknowledged record.
BOOST_AUTO_TEST_CASE(WitnessMakesTheMajorityForAcksAndPromotion) {
  const VolumeSpec vol = Journal();
  SimCluster c(WitnessSpec(vol));
  c.StartAll();
  c.WaitHealthy("a", vol);
  c.Attach("a", vol);
  std::string out;
  BOOST_TEST_REQUIRE(c.RunGuest("a", {"write", "--count", "100"}, &out) == 0, out);

  // b down: a and the witness are a majority, the writes go on.
  c.Kill("b");
  BOOST_TEST(c.RunGuest("a", {"write", "--from", "100", "--count", "100"}, &out) == 0, out);
  BOOST_TEST(LastPersisted(out) == 199, out);
  BOOST_TEST(c.ReplicaState("a", vol.uuid, "c") == rk::kReplicaStateInSync);
  c.Start("b");
  BOOST_TEST_REQUIRE(c.WaitFor("b in sync again", [&] {
    return c.ReplicaState("a", vol.uuid, "b") == rk::kReplicaStateInSync;
  }));
  BOOST_TEST(c.RunGuest("a", {"write", "--from", "200", "--count", "100"}, &out) == 0, out);

  // The primary's host dies (a crash: no vault). b asks for a new epoch
  // without --force: the witness's acceptance is the majority.
  c.Kill("a");
  BOOST_TEST_REQUIRE(
      c.WaitFor("b to see a down", [&] { return c.PeerState("b", "a") != dk::kPeerStateUp; }));
  auto p = c.Tool("b", {"promote", "--volume", vol.uuid, "--timeout-ms", "20000"});
  BOOST_TEST_REQUIRE(p.exit_code == 0, p.out << c.Logs());
  BOOST_TEST(p.out.find(": ok") != std::string::npos, p.out);
  BOOST_TEST(c.Repl("b", vol.uuid, rk::kRole) == rk::kRolePrimary);
  BOOST_TEST(c.ReplU64("b", vol.uuid, rk::kEpoch) == 2u);
  BOOST_TEST_REQUIRE(c.WaitFor("b serving with the witness in sync", [&] {
    return c.Repl("b", vol.uuid, rk::kServing) == "1" &&
           c.ReplicaState("b", vol.uuid, "c") == rk::kReplicaStateInSync;
  }));
  BOOST_TEST(c.Log("c").find("epoch 2") != std::string::npos, c.Log("c"));

  // Every acknowledged record is there on b, and b takes new writes.
  c.Attach("b", vol);
  BOOST_TEST(c.RunGuest("b", {"verify", "--count", "300"}, &out) == 0, out);
  BOOST_TEST(c.RunGuest("b", {"write", "--from", "300", "--count", "50"}, &out) == 0, out);
  BOOST_TEST(c.RunGuest("b", {"verify", "--count", "350"}, &out) == 0, out);
  BOOST_TEST(c.ReplicaState("b", vol.uuid, "c") == rk::kReplicaStateInSync);
}

// --replica-only is configuration like the rest: without a cluster file, or
// for a host the cluster file does not list, vnvramd stops at once with one
// line naming the problem (exit 2). No platform is needed.
BOOST_AUTO_TEST_CASE(ReplicaOnlyNeedsAClusterFileAndAListedHost) {
  const VolumeSpec vol = Journal();
  SimCluster c(WitnessSpec(vol));
  const std::string vault = c.scratch() + "/lone-vault";
  auto r = testing::RunTool(
      {testing::ClusterBin("vnvramd"), "--replica-only", "--vault-dir", vault, "--host-id", "c"});
  BOOST_TEST(r.exit_code == 2, r.out);
  BOOST_TEST(r.out.find("replica-only needs a cluster file") != std::string::npos, r.out);
  r = testing::RunTool({testing::ClusterBin("vnvramd"), "--replica-only", "--cluster",
                        c.cluster_file(), "--vault-dir", vault, "--host-id", "nobody"});
  BOOST_TEST(r.exit_code == 2, r.out);
  BOOST_TEST(r.out.find("host id 'nobody' is not listed") != std::string::npos, r.out);
  // Two witnesses on one vault directory: the second refuses to start.
  c.Start("c");
  r = testing::RunTool({testing::ClusterBin("vnvramd"), "--replica-only", "--cluster",
                        c.cluster_file(), "--vault-dir", c.node("c").vault_dir, "--host-id", "c"});
  BOOST_TEST(r.exit_code == 1, r.out);
  BOOST_TEST(r.out.find("another vnvramd is using the vault directory") != std::string::npos,
             r.out);
}

}  // namespace
}  // namespace vnvram
