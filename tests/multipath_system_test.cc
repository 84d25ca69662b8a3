// Multipath and failover, black box: one simulated host, a guest (domain 1)
// with two paths to one volume (path 0 through dom0's vnvramd "a0", path 1
// through driver domain 2's vnvramd "a1"), and a third member of the
// volume's replica group ("w", domain 3, serving no path). Real processes
// over real sockets: vnvram-xenstored, three vnvramd, vnvram-guest-demo as
// the guest's workload, nvram-tool as the operator. Every case checks the
// bytes: each record the writer saw acknowledged is verified afterwards by
// a fresh guest process.
#define BOOST_TEST_MODULE multipath_system
#include <signal.h>

#include <boost/test/unit_test.hpp>
#include <string>
#include <thread>

#include "tests/multipath_host.h"

namespace vnvram {
namespace {

using testing::ChildProcess;
using testing::kClusterWait;
using testing::LastPersisted;
using testing::MultipathHost;
using testing::MultipathSpec;
namespace mp = schema::mp;
namespace rk = schema::repl;
namespace fe = schema::fe;

// Starts every vnvramd, waits for a0 to lead with both others in sync and
// attaches the two paths (path 0 preferred).
void StartHealthy(MultipathHost& h) {
  h.StartAll();
  h.WaitHealthy("a0");
  h.Attach(0, 0, 2);
  h.Attach(1, 2, 1);
}

// The outcome keys of the last failover, for messages.
std::string Outcome(MultipathHost& h) {
  std::string s;
  for (std::string_view k :
       {mp::kFailoverState, mp::kFailoverCompleted, mp::kFailoverResult, mp::kFailoverReason,
        mp::kFailoverFrom, mp::kFailoverTo, mp::kFailoverDurationUs, mp::kFailoverMessage}) {
    s += std::string(k) + "=" + h.Mp(k) + " ";
  }
  return s;
}

// `nvram-tool failover 1 VOLUME --to DEVID --timeout SECONDS`, which must
// succeed (exit 0); its output.
std::string RequireOperatorFailover(MultipathHost& h, DevId to, int seconds = 20) {
  auto r = h.Tool({"failover", "1", h.volume(), "--to", std::to_string(to), "--timeout",
                   std::to_string(seconds)});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.out << Outcome(h) << h.Logs());
  return r.out;
}

// The end of a long transcript, for messages.
std::string Tail(const std::string& s) {
  return s.size() > 3000 ? "...\n" + s.substr(s.size() - 3000) : s;
}

// Reads the writer's output to its end (it blocks on a full pipe
// otherwise) and reaps it; its exit code, or -1 when it did not finish.
int Finish(ChildProcess& g) {
  const Deadline d(SystemClock::Instance(), kClusterWait);
  for (;;) {
    auto line = g.NextLine(std::chrono::duration_cast<std::chrono::milliseconds>(d.Remaining()));
    if (!line.ok()) break;  // EOF (exited) or the deadline
  }
  auto rc = g.Wait(std::chrono::milliseconds(5000));
  return rc.ok() ? *rc : -1;
}

// The guest's first automatic failover (request 0) has its outcome
// published.
void RequireFirstFailoverReported(MultipathHost& h) {
  BOOST_TEST_REQUIRE(h.WaitFor("the failover reported",
                               [&] {
                                 return h.Mp(mp::kFailoverState) == mp::kFailoverStateDone &&
                                        h.Mp(mp::kFailoverCompleted) == "0";
                               }),
                     Outcome(h));
}

// A fresh guest process verifies records [0, count).
void VerifyAll(MultipathHost& h, int64_t count) {
  std::string out;
  BOOST_TEST(h.RunGuest({"verify", "--count", std::to_string(count)}, &out) == 0, out << h.Logs());
}

BOOST_AUTO_TEST_CASE(OpenChoosesThePrimarysPathAndKeepsTheOtherStandby) {
  MultipathHost h(MultipathSpec{});
  StartHealthy(h);
  auto g = h.Guest({"write", "--count", "20", "--pause-after", "10"});
  BOOST_TEST_REQUIRE(g->WaitForLine("paused 9", kClusterWait).ok(), g->transcript());
  BOOST_TEST(h.WaitFor("the multipath state published", [&] {
    return h.Mp(mp::kActivePath) == "0" && h.Mp(mp::kStatus) == mp::kStatusOptimal &&
           h.PathRole(0) == fe::kPathRoleActive && h.PathRole(1) == fe::kPathRoleStandby;
  }));
  BOOST_TEST(h.Mp(mp::kEpoch) == h.Repl("a0", rk::kEpoch));
  BOOST_TEST_REQUIRE(g->WriteStdin("go\n").ok());
  BOOST_TEST(Finish(*g) == 0, g->transcript());
  VerifyAll(h, 20);
}

// After an operator failover to path 1 the guest exits; a new guest process
// opens the volume while both backends cycle through Closed to InitWait.
// Path 0 comes first in path order (priority 2) and may be connected first,
// but a1 is the primary: the open waits for path 1 rather than asking a0 to
// take the volume over from a live primary (which a0 refuses, after a
// round of the majority rule the guest waits for).
BOOST_AUTO_TEST_CASE(AReopenWaitsForThePrimarysPathInsteadOfActivatingAnother) {
  MultipathHost h(MultipathSpec{});
  StartHealthy(h);
  auto g = h.Guest({"write", "--count", "20", "--pause-after", "10"});
  BOOST_TEST_REQUIRE(g->WaitForLine("paused 9", kClusterWait).ok(), g->transcript());
  RequireOperatorFailover(h, 1);
  BOOST_TEST_REQUIRE(g->WriteStdin("go\n").ok());
  BOOST_TEST_REQUIRE(Finish(*g) == 0, g->transcript());
  const std::string epoch = h.Repl("a1", rk::kEpoch);
  const std::string a0_activated = h.Read(schema::BackendKey(0, 1, 0, schema::be::kActivated));
  for (int i = 0; i < 5; ++i) {
    VerifyAll(h, 20);
    BOOST_TEST(h.Repl("a1", rk::kRole) == rk::kRolePrimary);
    BOOST_TEST(h.Repl("a1", rk::kEpoch) == epoch);
    // No activation was asked of path 0's backend.
    BOOST_TEST(h.Read(schema::BackendKey(0, 1, 0, schema::be::kActivated)) == a0_activated,
               "open " << i << ": " << h.Logs());
  }
}

// The first test: kill -9 of the active backend under a continuous
// persist workload; the guest carries on over path 1 and every record it
// saw acknowledged is there.
BOOST_AUTO_TEST_CASE(KillOfTheActiveBackendUnderLoadLosesNothing) {
  MultipathHost h(MultipathSpec{});
  StartHealthy(h);
  auto g = h.Guest({"write", "--count", "3000"});
  BOOST_TEST_REQUIRE(g->WaitForLine("persisted 500 ", kClusterWait).ok(), g->transcript());
  h.Kill("a0");
  const int rc = Finish(*g);
  BOOST_TEST_REQUIRE(rc == 0, Tail(g->transcript()) << Outcome(h) << h.Logs());
  BOOST_TEST(LastPersisted(g->transcript()) == 2999);
  BOOST_TEST(g->transcript().find("remapped") != std::string::npos, g->transcript());
  RequireFirstFailoverReported(h);
  BOOST_TEST(h.Mp(mp::kFailoverResult) == mp::kFailoverResultOk, Outcome(h));
  BOOST_TEST(h.Mp(mp::kFailoverFrom) == "0");
  BOOST_TEST(h.Mp(mp::kFailoverTo) == "1");
  BOOST_TEST(h.Mp(mp::kActivePath) == "1");
  BOOST_TEST(h.Repl("a1", rk::kRole) == rk::kRolePrimary);
  BOOST_TEST_MESSAGE("failover after kill -9 of the active backend: "
                     << h.Mp(mp::kFailoverDurationUs) << " us (reason " << h.Mp(mp::kFailoverReason)
                     << ")");
  VerifyAll(h, 3000);
}

// A standby whose backend reports the primary unreachable from the start (a
// restarted backend publishes "down" first, and may never publish "up" if
// its link to the primary comes and goes between two publications) still
// gets the active path probed when a request waits: the kill -9 of the
// active backend is found by that probe (backend-gone) well before the
// ring timeout, here longer than the guest's request deadline.
BOOST_AUTO_TEST_CASE(AStandbyThatNeverReportedTheLinkUpStillHelpsFindADeadPrimary) {
  MultipathHost h(MultipathSpec{});
  StartHealthy(h);
  auto g =
      h.Guest({"--path-timeout-ms", "60000", "write", "--count", "3000", "--pause-after", "500"});
  BOOST_TEST_REQUIRE(g->WaitForLine("paused 499", kClusterWait).ok(), g->transcript());
  // Path 1's backend key says down (a backend that has not published "up"
  // yet); a0 and the link are fine, so the probe this causes finds a0 alive.
  h.Write(schema::BackendKey(2, 1, 1, schema::be::kPrimaryLink), schema::be::kPrimaryLinkDown);
  BOOST_TEST_REQUIRE(g->WriteStdin("go\n").ok());
  BOOST_TEST_REQUIRE(g->WaitForLine("persisted 1000 ", kClusterWait).ok(), g->transcript());
  BOOST_TEST(h.Mp(mp::kActivePath) == "0", Outcome(h));
  h.Kill("a0");
  const int rc = Finish(*g);
  BOOST_TEST_REQUIRE(rc == 0, Tail(g->transcript()) << Outcome(h) << h.Logs());
  RequireFirstFailoverReported(h);
  BOOST_TEST(h.Mp(mp::kFailoverResult) == mp::kFailoverResultOk, Outcome(h));
  BOOST_TEST(h.Mp(mp::kFailoverReason) == mp::kFailoverReasonBackendGone, Outcome(h));
  BOOST_TEST(h.Mp(mp::kFailoverTo) == "1", Outcome(h));
  VerifyAll(h, 3000);
}

// Operator failover both ways while the guest writes.
BOOST_AUTO_TEST_CASE(OperatorFailoverBothWaysUnderLoad) {
  MultipathHost h(MultipathSpec{});
  StartHealthy(h);
  auto g = h.Guest({"write", "--count", "4000"});
  BOOST_TEST_REQUIRE(g->WaitForLine("persisted 300 ", kClusterWait).ok(), g->transcript());
  const std::string to1 = RequireOperatorFailover(h, 1);
  BOOST_TEST(to1.find("0 -> 1") != std::string::npos, to1);
  BOOST_TEST_MESSAGE("operator failover 0 -> 1: " << to1);
  BOOST_TEST(h.Repl("a1", rk::kRole) == rk::kRolePrimary);
  h.WaitHealthy("a1");
  auto to0 = h.Tool({"failover", "1", "0", "--to", "0", "--timeout", "20", "--json"});
  BOOST_TEST_REQUIRE(to0.exit_code == 0, to0.out << Outcome(h) << h.Logs());
  auto j = nlohmann::json::parse(to0.out, nullptr, false);
  BOOST_TEST_REQUIRE(!j.is_discarded(), to0.out);
  BOOST_TEST_MESSAGE("operator failover 1 -> 0: " << to0.out);
  BOOST_TEST(h.Repl("a0", rk::kRole) == rk::kRolePrimary);
  const int rc = Finish(*g);
  BOOST_TEST_REQUIRE(rc == 0, Tail(g->transcript()) << h.Logs());
  BOOST_TEST(LastPersisted(g->transcript()) == 3999);
  VerifyAll(h, 4000);
}

// The upgrade of a backend without downtime, step by step as
// docs/operations.md gives it, while the guest writes: move the volume off
// a0, stop a0 with SIGTERM (a clean exit after its final vault), start it
// again (the new binary), wait until it is in sync and the guest's group is
// optimal, move the volume back. The guest never sees a failed persist and
// only the two operator failovers run (no automatic one); every record it
// saw acknowledged is there. The writer pauses (alive, the volume open)
// near its end in case the steps outlast its writes.
BOOST_AUTO_TEST_CASE(TheDocumentedBackendUpgradeUnderLoadLosesNothing) {
  MultipathSpec spec;
  spec.volume.size = 2 << 20;
  MultipathHost h(spec);
  StartHealthy(h);
  auto g = h.Guest({"write", "--count", "32000", "--pause-after", "31000"});
  BOOST_TEST_REQUIRE(g->WaitForLine("persisted 300 ", kClusterWait).ok(), g->transcript());
  // The guest's output is read while the steps run, so that it never
  // blocks on a full pipe: it writes all along, and its log lines (the
  // monitor thread's among them) always get out. Nothing else touches `g`
  // until the thread is joined.
  bool paused = false;
  std::thread reader(
      [&] { paused = g->WaitForLine("paused 30999", std::chrono::milliseconds(120000)).ok(); });
  struct Join {
    std::thread& t;
    ~Join() {
      if (t.joinable()) t.join();
    }
  } join{reader};
  // 3. Move the volume off a0, without --force: a0 is alive.
  RequireOperatorFailover(h, 1, 30);
  BOOST_TEST(h.Repl("a1", rk::kRole) == rk::kRolePrimary);
  // 4. Stop a0 (SIGTERM); 5. start it again and wait for it in sync.
  h.Stop("a0");
  h.Start("a0");
  h.WaitHealthy("a1");
  BOOST_TEST_REQUIRE(h.WaitFor("the group optimal again", [&] {
    return h.Mp(mp::kStatus) == mp::kStatusOptimal && h.PathRole(0) == fe::kPathRoleStandby;
  }));
  // 6. Move it back.
  RequireOperatorFailover(h, 0, 30);
  BOOST_TEST(h.Repl("a0", rk::kRole) == rk::kRolePrimary);
  // Two operator failovers (requests 1 and 2), no automatic one.
  BOOST_TEST(h.Mp(mp::kFailoverCompleted) == "2", Outcome(h));
  BOOST_TEST(h.Mp(mp::kFailoverReason) == mp::kFailoverReasonOperator, Outcome(h));
  reader.join();
  BOOST_TEST_REQUIRE(paused, Tail(g->transcript()));
  BOOST_TEST_REQUIRE(g->WriteStdin("go\n").ok());
  BOOST_TEST_REQUIRE(Finish(*g) == 0, Tail(g->transcript()) << h.Logs());
  BOOST_TEST(LastPersisted(g->transcript()) == 31999);
  BOOST_TEST(g->transcript().find("error") == std::string::npos, Tail(g->transcript()));
  VerifyAll(h, 32000);
}

// An operator failover served by libvnvram's monitor thread while the
// guest holds region() and is about to store a record: the switch of the
// mapping waits for the guest's next call, so the stores go to the mapping
// that call carries over and the persist makes them durable on the new
// path (docs/multipath.md, "The caller's mapping").
BOOST_AUTO_TEST_CASE(FailoverBetweenRegionAndTheStoresKeepsThem) {
  MultipathHost h(MultipathSpec{});
  StartHealthy(h);
  auto g = h.Guest({"write", "--count", "100", "--pause-mapped", "50"});
  BOOST_TEST_REQUIRE(g->WaitForLine("mapped 50", kClusterWait).ok(), g->transcript());
  RequireOperatorFailover(h, 1);
  BOOST_TEST(h.Repl("a1", rk::kRole) == rk::kRolePrimary);
  BOOST_TEST_REQUIRE(g->WriteStdin("go\n").ok());
  const int rc = Finish(*g);
  BOOST_TEST_REQUIRE(rc == 0, Tail(g->transcript()) << h.Logs());
  BOOST_TEST(g->transcript().find("remapped") != std::string::npos, g->transcript());
  VerifyAll(h, 100);
}

// An operator failover to a member that is behind: a1 crashed (kill -9)
// while the guest went on writing, so after its restart it does not vouch
// for its copy and the primary resynchronises it: every 4 KiB chunk of the
// 64 MiB volume was written since a1's copy (a fill first), so the resync
// takes seconds and the request lands during it. The activation waits for
// the resync, then takes over; every record is there.
BOOST_AUTO_TEST_CASE(FailoverToALaggingReplicaWaitsForItsResync) {
  // 64 MiB is 16384 pages: beyond the default gntalloc limit of 1024
  // (vnvramd inherits the environment; lab dom0s raise the module's limit).
  ::setenv("VNVRAM_SIM_GNTALLOC_LIMIT", "20000", 1);
  struct Unset {
    ~Unset() { ::unsetenv("VNVRAM_SIM_GNTALLOC_LIMIT"); }
  } unset;
  MultipathSpec spec;
  spec.volume.size = 64u << 20;
  spec.resync_chunk = "4K";
  MultipathHost h(spec);
  StartHealthy(h);
  std::string filled;
  BOOST_TEST_REQUIRE(h.RunGuest({"fill", "--offset", "1048576"}, &filled) == 0, filled);
  // The writer stops before its last record until the failover is done: a
  // fast one would otherwise finish (and close the device) before the
  // failover is asked, and no frontend would be left to perform it.
  auto g = h.Guest({"write", "--count", "3000", "--pause-after", "2999"});
  BOOST_TEST_REQUIRE(g->WaitForLine("persisted 200 ", kClusterWait).ok(), g->transcript());
  h.Kill("a1");
  BOOST_TEST_REQUIRE(g->WaitForLine("persisted 1200 ", kClusterWait).ok(), g->transcript());
  h.Start("a1");
  BOOST_TEST_REQUIRE(h.WaitFor("the resync of a1", [&] {
    return h.Repl("a0", rk::ReplicaState("a1")) == rk::kReplicaStateSyncing;
  }));
  BOOST_TEST_MESSAGE("failover to the lagging replica: " << RequireOperatorFailover(h, 1, 60));
  BOOST_TEST(h.Repl("a1", rk::kRole) == rk::kRolePrimary);
  BOOST_TEST(h.BackendLog("a1").find("activation waits for the resync") != std::string::npos,
             h.Logs());
  BOOST_TEST_REQUIRE(g->WriteStdin("go\n").ok());
  const int rc = Finish(*g);
  BOOST_TEST_REQUIRE(rc == 0, Tail(g->transcript()) << h.Logs());
  BOOST_TEST(LastPersisted(g->transcript()) == 2999);
  VerifyAll(h, 3000);
}

// --force is for a primary that is gone: while a0 lives (and a1 hears
// it), a forced failover to a1 waits out a0's lease, is refused, and
// nothing changes for the guest, which keeps writing over path 0.
BOOST_AUTO_TEST_CASE(ForcedFailoverFromALivePrimaryIsRefused) {
  MultipathHost h(MultipathSpec{});
  StartHealthy(h);
  auto g = h.Guest({"write", "--count", "2000"});
  BOOST_TEST_REQUIRE(g->WaitForLine("persisted 200 ", kClusterWait).ok(), g->transcript());
  auto r = h.Tool({"failover", "1", h.volume(), "--to", "1", "--force", "--timeout", "20"});
  BOOST_TEST(r.exit_code != 0, r.out);
  BOOST_TEST(r.out.find("alive and reachable") != std::string::npos, r.out << Outcome(h));
  BOOST_TEST(h.Repl("a0", rk::kRole) == rk::kRolePrimary);
  BOOST_TEST(h.Repl("a0", rk::kEpoch) == "1");
  const int rc = Finish(*g);
  BOOST_TEST_REQUIRE(rc == 0, Tail(g->transcript()) << h.Logs());
  BOOST_TEST(LastPersisted(g->transcript()) == 1999);
  VerifyAll(h, 2000);
}

// Without a majority (two of three members down) a failover is refused,
// automatic or by the operator; the writer learns that its persist failed;
// nothing it saw acknowledged is lost once the operator forces the one
// member that holds everything (the crashed ones' copies do not vouch).
BOOST_AUTO_TEST_CASE(FailoverWithoutAMajorityIsRefused) {
  MultipathHost h(MultipathSpec{});
  StartHealthy(h);
  auto g = h.Guest({"write", "--count", "400", "--pause-after", "200"});
  BOOST_TEST_REQUIRE(g->WaitForLine("paused 199", kClusterWait).ok(), g->transcript());
  h.Kill("w");
  h.Kill("a0");
  // The idle guest notices (a1 reports the primary unreachable), tries a1
  // and is refused: a1 alone is no majority.
  // The frontend writes the state, then the outcome, in two transactions:
  // wait for both.
  BOOST_TEST_REQUIRE(h.WaitFor("the automatic failover refused",
                               [&] {
                                 return h.Mp(mp::kFailoverState) == mp::kFailoverStateFailed &&
                                        !h.Mp(mp::kFailoverResult).empty();
                               }),
                     Outcome(h));
  BOOST_TEST(h.Mp(mp::kFailoverResult) == mp::kFailoverResultNoMajority, Outcome(h));
  // Failed, or trying again (every xenstore change of the group retries).
  const std::string status = h.Mp(mp::kStatus);
  BOOST_TEST((status == mp::kStatusFailed || status == mp::kStatusFailingOver), status);
  BOOST_TEST(h.Repl("a1", rk::kRole) != rk::kRolePrimary);
  auto op = h.Tool({"failover", "1", h.volume(), "--to", "1", "--force", "--timeout", "20"});
  BOOST_TEST(op.exit_code == 1, op.out);
  BOOST_TEST(op.out.find("no-majority") != std::string::npos, op.out);
  BOOST_TEST_MESSAGE("refused: " << op.out);
  // The writer goes on and is told its persist failed.
  BOOST_TEST_REQUIRE(g->WriteStdin("go\n").ok());
  BOOST_TEST(Finish(*g) == 1, Tail(g->transcript()));
  BOOST_TEST(g->transcript().find("error persist of record 200") != std::string::npos,
             Tail(g->transcript()));
  // The members come back; the operator forces a1, which holds everything.
  h.Start("w");
  h.Start("a0");
  auto p = h.Tool(
      {"promote", "--volume", h.volume(), "--backend", "2", "--force", "--timeout-ms", "20000"});
  BOOST_TEST_REQUIRE(p.exit_code == 0, p.out << h.Logs());
  h.WaitHealthy("a1");
  VerifyAll(h, 200);
}

// A backend that keeps dying and coming back: every time the active one is
// killed (once its group is in sync again), the guest fails over; nothing
// acknowledged is lost or corrupted.
BOOST_AUTO_TEST_CASE(FlappingBackendsLoseNothing) {
  MultipathHost h(MultipathSpec{});
  StartHealthy(h);
  auto g = h.Guest({"write", "--count", "16000"});
  BOOST_TEST_REQUIRE(g->WaitForLine("persisted 100 ", kClusterWait).ok(), g->transcript());
  std::string active = "a0";
  for (int round = 0; round < 4; ++round) {
    // The group in sync again; the guest's path to the restarted backend
    // may still be reconnecting when the active one dies (the failover
    // that meets it not ready retries on its own, docs/multipath.md).
    h.WaitHealthy(active);
    const int64_t before = LastPersisted(g->transcript());
    h.Kill(active);
    const std::string next = active == "a0" ? "a1" : "a0";
    // The guest goes on: a hundred more records after the kill.
    BOOST_TEST_REQUIRE(
        g->WaitForLine("persisted " + std::to_string(before + 100) + " ", kClusterWait).ok(),
        Tail(g->transcript()) << h.Logs());
    const std::string to = next == "a0" ? "0" : "1";
    BOOST_TEST(h.WaitFor("the failover to " + next + " reported",
                         [&] {
                           return h.Mp(mp::kFailoverTo) == to &&
                                  h.Mp(mp::kFailoverState) == mp::kFailoverStateDone &&
                                  h.Repl(next, rk::kRole) == rk::kRolePrimary;
                         }),
               Outcome(h) << "\n"
                          << Tail(g->transcript()));
    BOOST_TEST_MESSAGE("round " << round << ": killed " << active << ", failover in "
                                << h.Mp(mp::kFailoverDurationUs) << " us");
    h.Start(active);  // back as a replica; resynchronised
    active = next;
  }
  BOOST_TEST_REQUIRE(g->Kill().ok());
  (void)Finish(*g);
  const int64_t acked = LastPersisted(g->transcript());
  BOOST_TEST(acked > 400);
  VerifyAll(h, acked + 1);
}

}  // namespace
}  // namespace vnvram
