// Tests of nvram-tool's multipath side on the sim platform: attach
// --priority and the per-domain directories it creates (with their
// owners), detach removing a volume's multipath directory with its last
// path, failover's checks and its protocol against a frontend the test
// plays (a xenstore handle of the guest domain), and monitor, in-process
// (Monitor, with a manual clock) and as a process that follows changes live
// and stops on SIGTERM/SIGINT. A vnvram-xenstored runs as a child process;
// no vnvramd runs (the test writes what a backend would). Every wait is on
// an event (output line, xenstore watch, pidfd) with a deadline; nothing
// sleeps.
#define BOOST_TEST_MODULE nvram_tool
#include <poll.h>
#include <signal.h>

#include <boost/test/unit_test.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/parse.h"
#include "platform/platform.h"
#include "platform/sim/xenstored/testing/xenstored_process.h"
#include "tests/child_process.h"
#include "tools/nvram-tool/monitor.h"
#include "tools/nvram-tool/toolstack.h"
#include "xenstore-schema/schema.h"

namespace vnvram {
namespace {

namespace fe = schema::fe;
namespace be = schema::be;
namespace mp = schema::mp;
namespace rk = schema::repl;
namespace dk = schema::daemon;
using platform::Perm;
using platform::PermEntry;
using std::chrono::milliseconds;
using testing::ChildProcess;

constexpr milliseconds kWait{20000};
constexpr const char* kVolume = "0b5e7c1a-2f4d-4e6b-9a8c-1d2e3f405162";
constexpr const char* kOtherVolume = "6a1e5d2c-0b7f-4c3e-9d8a-5f4e3d2c1b0a";

Uuid U(const char* s) {
  return ParseUuid(s).value();
}

std::string Bin(const std::string& name) {
  return std::string(VNVRAM_BIN_DIR) + "/" + name;
}

std::string PermsText(const std::vector<PermEntry>& perms) {
  std::string out;
  for (const auto& p : perms) out += platform::FormatPerm(p) + " ";
  return out;
}

// One sim xenstored serving guest domains 1, 2 and 3 besides dom0, a dom0
// handle, and handles of other domains on demand.
struct Sim {
  Sim() {
    auto xs = sim::testing::XenstoredProcess::Start({1, 2, 3});
    BOOST_TEST_REQUIRE(xs.ok(), xs.status().ToString());
    xenstored = std::move(xs).value();
    xs0 = OpenAs(0);
  }

  std::string Spec(DomId d) const {
    return "sim:" + xenstored->socket_dir() + ":" + std::to_string(d);
  }

  std::unique_ptr<platform::XenStore> OpenAs(DomId d) {
    auto p = platform::OpenPlatform(Spec(d));
    BOOST_TEST_REQUIRE(p.ok(), p.status().ToString());
    auto x = (*p)->OpenXenStore();
    BOOST_TEST_REQUIRE(x.ok(), x.status().ToString());
    platforms.push_back(std::move(p).value());
    return std::move(x).value();
  }

  std::vector<std::string> ToolArgv(const std::vector<std::string>& args) const {
    std::vector<std::string> argv{Bin("nvram-tool"), "--platform", Spec(0)};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }

  sim::testing::ProgramResult Tool(const std::vector<std::string>& args) {
    auto r = sim::testing::RunProgram(ToolArgv(args), {}, kWait);
    BOOST_TEST_REQUIRE(r.ok(), r.status().ToString());
    return *r;
  }

  std::unique_ptr<ChildProcess> Spawn(const std::vector<std::string>& args) {
    auto c = ChildProcess::Spawn(ToolArgv(args));
    BOOST_TEST_REQUIRE(c.ok(), c.status().ToString());
    return std::move(c).value();
  }

  void Attach(DomId f, DomId b, DevId dev, const char* volume,
              std::optional<uint32_t> priority = std::nullopt) {
    tools::AttachSpec spec{f, b, dev, U(volume), 1 << 20, priority};
    Status s = tools::Attach(*xs0, spec);
    BOOST_TEST_REQUIRE(s.ok(), s.ToString());
  }

  std::vector<PermEntry> Perms(const std::string& path) {
    auto p = xs0->GetPermissions(platform::kNoTx, path);
    BOOST_TEST_REQUIRE(p.ok(), path + ": " + p.status().ToString());
    return *p;
  }

  bool Exists(const std::string& path) { return xs0->Read(platform::kNoTx, path).ok(); }

  void Put(platform::XenStore& xs, const std::string& path, const std::string& value) {
    Status s = xs.Write(platform::kNoTx, path, value);
    BOOST_TEST_REQUIRE(s.ok(), path + ": " + s.ToString());
  }

  std::unique_ptr<sim::testing::XenstoredProcess> xenstored;
  std::vector<std::unique_ptr<platform::Platform>> platforms;
  std::unique_ptr<platform::XenStore> xs0;
};

void ExpectOneLineError(const sim::testing::ProgramResult& r, int code, const std::string& names) {
  BOOST_TEST(r.exit_code == code, r.out);
  BOOST_TEST(r.out.find(names) != std::string::npos, "expected '" << names << "' in: " << r.out);
  BOOST_TEST(std::count(r.out.begin(), r.out.end(), '\n') == 1, r.out);
}

// ---- attach / detach ----

BOOST_AUTO_TEST_CASE(AttachWritesPriorityAndCreatesOwnedVnvramDirectories) {
  Sim sim;
  const Uuid vol = U(kVolume);
  auto r = sim.Tool({"attach", "1", "--backend", "2", "--devid", "0", "--size", "1M", "--volume",
                     kVolume, "--priority", "7"});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.out);
  BOOST_TEST(r.out.find("priority 7") != std::string::npos, r.out);
  auto prio = sim.xs0->Read(platform::kNoTx, schema::FrontendKey(1, 0, fe::kPathPriority));
  BOOST_TEST_REQUIRE(prio.ok(), prio.status().ToString());
  BOOST_TEST(*prio == "7");
  // The same permissions as the other frontend keys: F's, read for B.
  const std::vector<PermEntry> fperms = {{1, Perm::kNone}, {2, Perm::kRead}};
  BOOST_TEST(sim.Perms(schema::FrontendKey(1, 0, fe::kPathPriority)) == fperms,
             PermsText(sim.Perms(schema::FrontendKey(1, 0, fe::kPathPriority))));
  BOOST_TEST(sim.Perms(schema::FrontendKey(1, 0, fe::kVolume)) == fperms);

  // F's vnvram directory and the volume's multipath directory are F's;
  // B's vnvram directory is B's; nobody else gets access.
  const std::vector<PermEntry> f_only = {{1, Perm::kNone}};
  const std::vector<PermEntry> b_only = {{2, Perm::kNone}};
  for (const std::string& dir :
       {schema::DomainVnvramDir(1), tools::MultipathRoot(1), schema::MultipathDir(1, vol)}) {
    BOOST_TEST(sim.Perms(dir) == f_only, dir << ": " << PermsText(sim.Perms(dir)));
  }
  BOOST_TEST(sim.Perms(schema::DomainVnvramDir(2)) == b_only,
             PermsText(sim.Perms(schema::DomainVnvramDir(2))));

  // What the owners do with them: the guest publishes its multipath view,
  // the driver domain's vnvramd its daemon keys.
  auto guest = sim.OpenAs(1);
  sim.Put(*guest, schema::MultipathKey(1, vol, mp::kStatus), std::string(mp::kStatusDegraded));
  auto driver = sim.OpenAs(2);
  sim.Put(*driver, schema::DaemonKey(2, dk::kStatus), std::string(dk::kStatusRunning));
  // ... and domain 3 can read neither.
  auto other = sim.OpenAs(3);
  BOOST_TEST(!other->Read(platform::kNoTx, schema::MultipathKey(1, vol, mp::kStatus)).ok());
  BOOST_TEST(!other->Read(platform::kNoTx, schema::DaemonKey(2, dk::kStatus)).ok());

  // A second path of the volume leaves the existing directories alone
  // (the guest's status stays); without --priority no priority node.
  auto r2 = sim.Tool(
      {"attach", "1", "--backend", "0", "--devid", "1", "--size", "1M", "--volume", kVolume});
  BOOST_TEST_REQUIRE(r2.exit_code == 0, r2.out);
  BOOST_TEST(!sim.Exists(schema::FrontendKey(1, 1, fe::kPathPriority)));
  auto status = sim.xs0->Read(platform::kNoTx, schema::MultipathKey(1, vol, mp::kStatus));
  BOOST_TEST_REQUIRE(status.ok());
  BOOST_TEST(*status == mp::kStatusDegraded);

  for (const char* bad : {"256", "-1", "x", "07x"}) {
    auto rb = sim.Tool({"attach", "1", "--backend", "2", "--devid", "5", "--size", "1M", "--volume",
                        kVolume, "--priority", bad});
    ExpectOneLineError(rb, 2, std::string("--priority '") + bad + "'");
  }
  BOOST_TEST(!sim.Exists(schema::FrontendDir(1, 5)));
}

BOOST_AUTO_TEST_CASE(DetachRemovesTheMultipathDirectoryWithTheVolumesLastPath) {
  Sim sim;
  const Uuid vol = U(kVolume), other = U(kOtherVolume);
  sim.Attach(1, 2, 0, kVolume, 5);
  sim.Attach(1, 2, 1, kVolume);
  sim.Attach(1, 2, 2, kOtherVolume);
  // Play the backend: already Closed, so detach has nothing to wait for.
  for (DevId dev : {0u, 1u, 2u}) {
    sim.Put(*sim.xs0, schema::BackendKey(2, 1, dev, be::kState),
            std::string(schema::XenbusStateValue(schema::XenbusState::kClosed)));
  }
  auto detach = [&](DevId dev) {
    auto r = sim.Tool({"detach", "1", std::to_string(dev), "--timeout", "5"});
    BOOST_TEST_REQUIRE(r.exit_code == 0, r.out);
  };
  detach(0);
  BOOST_TEST(!sim.Exists(schema::FrontendDir(1, 0)));
  BOOST_TEST(sim.Exists(schema::MultipathDir(1, vol)), "path 1 still leads to the volume");
  detach(1);
  BOOST_TEST(!sim.Exists(schema::MultipathDir(1, vol)));
  BOOST_TEST(sim.Exists(schema::MultipathDir(1, other)));
  BOOST_TEST(sim.Exists(schema::DomainVnvramDir(1)));
  detach(2);
  BOOST_TEST(!sim.Exists(schema::MultipathDir(1, other)));
  BOOST_TEST(!sim.Exists(tools::MultipathRoot(1)));
  BOOST_TEST(!sim.Exists(schema::DomainVnvramDir(1)));
  BOOST_TEST(!sim.Exists(schema::FrontendRoot(1)));
  // The driver domain's vnvram directory is its vnvramd's home: it stays.
  BOOST_TEST(sim.Exists(schema::DomainVnvramDir(2)));
}

BOOST_AUTO_TEST_CASE(DetachKeepsAVnvramDirectoryThatHoldsMore) {
  Sim sim;
  sim.Attach(1, 2, 0, kVolume);
  // Domain 1 also serves as a backend of its own vnvram state elsewhere:
  // something besides multipath lives in its vnvram directory.
  sim.Put(*sim.xs0, schema::DaemonKey(1, dk::kStatus), std::string(dk::kStatusRunning));
  sim.Put(*sim.xs0, schema::BackendKey(2, 1, 0, be::kState),
          std::string(schema::XenbusStateValue(schema::XenbusState::kClosed)));
  auto r = sim.Tool({"detach", "1", "0"});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.out);
  BOOST_TEST(!sim.Exists(tools::MultipathRoot(1)));
  BOOST_TEST(sim.Exists(schema::DaemonKey(1, dk::kStatus)));
}

// ---- failover ----

BOOST_AUTO_TEST_CASE(FailoverRejectsBadInputsWithOneLineNamingThem) {
  Sim sim;
  sim.Attach(1, 0, 0, kVolume);
  sim.Attach(1, 2, 1, kOtherVolume);
  sim.Attach(2, 0, 0, kVolume);
  // Domain 2's path exists but its multipath directory is gone.
  BOOST_TEST_REQUIRE(sim.xs0->Remove(platform::kNoTx, schema::MultipathDir(2, U(kVolume))).ok());
  struct Case {
    std::vector<std::string> args;
    int code;
    std::string names;
  };
  const std::string v = kVolume;
  const std::vector<Case> cases = {
      {{"failover", "9", v}, 1, "domain 9 does not exist"},
      {{"failover", "x9", v}, 2, "domain 'x9'"},
      {{"failover", "1", "not-a-uuid"}, 2, "volume 'not-a-uuid'"},
      {{"failover", "1", "0b5e7c1a-2f4d-4e6b-9a8c-1d2e3f40516"},
       2,
       "volume '0b5e7c1a-2f4d-4e6b-9a8c-1d2e3f40516'"},
      {{"failover", "1", "4"}, 1, "no vnvram device 4 in domain 1"},
      {{"failover", "1", "99999999999"}, 2, "devid '99999999999'"},
      {{"failover", "1", v, "--to", "1"},
       1,
       "--to 1: device 1 of domain 1 is not a path of volume " + v + " (it leads to volume " +
           kOtherVolume + ")"},
      {{"failover", "1", "0", "--to", "8"}, 1, "--to 8: device 8 of domain 1 is not a path"},
      {{"failover", "1", v, "--to", "one"}, 2, "--to 'one'"},
      {{"failover", "3", v}, 1, "volume " + v + " has no multipath directory in domain 3"},
      {{"failover", "2", "0"}, 1, "volume " + v + " has no multipath directory in domain 2"},
      {{"failover", "1", v, "--timeout", "0"}, 2, "--timeout '0'"},
      {{"failover", "1", v, "--timeout", "3601"}, 2, "--timeout '3601'"},
      {{"failover", "1", v, "--timeout", "1s"}, 2, "--timeout '1s'"},
  };
  for (const auto& c : cases) {
    BOOST_TEST_CONTEXT(c.args[1] << " " << c.args[2]) {
      ExpectOneLineError(sim.Tool(c.args), c.code, c.names);
    }
  }
  // Nothing was requested anywhere.
  BOOST_TEST(!sim.Exists(schema::MultipathKey(1, U(kVolume), mp::kFailoverRequest)));
}

// The request keys as the frontend finds them when failover/request
// appears.
struct SeenRequest {
  uint64_t request = 0;
  std::optional<std::string> target, force, timeout_ms;
};

std::optional<std::string> ReadOpt(platform::XenStore& xs, platform::TxId tx,
                                   const std::string& path) {
  auto v = xs.Read(tx, path);
  if (v.ok()) return *v;
  return std::nullopt;
}

// Plays the frontend: waits (on a watch) for failover/request above
// `after` and reads, in the same transaction, what came with it.
SeenRequest AwaitRequest(platform::XenStore& guest, DomId f, const Uuid& vol, uint64_t after) {
  const std::string req = schema::MultipathKey(f, vol, mp::kFailoverRequest);
  BOOST_TEST_REQUIRE(guest.Watch(req, "test:responder").ok());
  const Deadline dl(SystemClock::Instance(), kWait);
  SeenRequest seen;
  for (;;) {
    Status s = platform::RunTransaction(guest, [&](platform::TxId tx) -> Status {
      seen = SeenRequest{};
      auto r = ReadOpt(guest, tx, req);
      if (r) seen.request = ParseU64(*r).value_or(0);
      seen.target = ReadOpt(guest, tx, schema::MultipathKey(f, vol, mp::kFailoverTarget));
      seen.force = ReadOpt(guest, tx, schema::MultipathKey(f, vol, mp::kFailoverForce));
      seen.timeout_ms = ReadOpt(guest, tx, schema::MultipathKey(f, vol, mp::kFailoverTimeoutMs));
      return Status::Ok();
    });
    BOOST_TEST_REQUIRE(s.ok(), s.ToString());
    if (seen.request > after) break;
    BOOST_TEST_REQUIRE(!dl.Expired(), "no failover request in time");
    pollfd pfd{guest.WatchFd(), POLLIN, 0};
    (void)::poll(&pfd, 1, dl.RemainingMillisForPoll());
    for (;;) {
      auto ev = guest.ReadWatch();
      if (!ev.ok() || !ev->has_value()) break;
    }
  }
  (void)guest.Unwatch(req, "test:responder");
  return seen;
}

struct Outcome {
  std::string result, from, to, duration_us, message;
};

// Writes the outcome keys, then failover/completed last, as the frontend.
void Answer(Sim& sim, platform::XenStore& guest, DomId f, const Uuid& vol, uint64_t request,
            const Outcome& o) {
  auto key = [&](std::string_view k) { return schema::MultipathKey(f, vol, k); };
  const bool ok = o.result == mp::kFailoverResultOk;
  sim.Put(guest, key(mp::kFailoverState),
          std::string(ok ? mp::kFailoverStateDone : mp::kFailoverStateFailed));
  sim.Put(guest, key(mp::kFailoverResult), o.result);
  sim.Put(guest, key(mp::kFailoverReason),
          std::string(request == 0 ? mp::kFailoverReasonBackendGone : mp::kFailoverReasonOperator));
  sim.Put(guest, key(mp::kFailoverFrom), o.from);
  // The frontend names the new path only when it switched to one (and
  // removes an earlier outcome's otherwise).
  if (ok) {
    sim.Put(guest, key(mp::kFailoverTo), o.to);
  } else {
    (void)guest.Remove(platform::kNoTx, key(mp::kFailoverTo));
  }
  sim.Put(guest, key(mp::kFailoverDurationUs), o.duration_us);
  sim.Put(guest, key(mp::kFailoverMessage), o.message);
  sim.Put(guest, key(mp::kFailoverCompleted), std::to_string(request));
}

BOOST_AUTO_TEST_CASE(FailoverSendsTheRequestAndPrintsTheFrontendsOutcome) {
  Sim sim;
  const Uuid vol = U(kVolume);
  sim.Attach(1, 0, 0, kVolume, 10);
  sim.Attach(1, 2, 1, kVolume, 5);
  auto guest = sim.OpenAs(1);
  // An earlier failover finished as request 5: the next one is 6.
  sim.Put(*guest, schema::MultipathKey(1, vol, mp::kFailoverCompleted), "5");

  // By volume, no --to: the frontend picks; defaults for force and timeout.
  auto tool = sim.Spawn({"failover", "1", kVolume});
  SeenRequest seen = AwaitRequest(*guest, 1, vol, 5);
  BOOST_TEST(seen.request == 6u);
  BOOST_TEST(!seen.target.has_value());
  BOOST_TEST(seen.force.value_or("?") == "0");
  BOOST_TEST(seen.timeout_ms.value_or("?") == "10000");
  // An automatic failover finishing meanwhile is not the answer ...
  Answer(sim, *guest, 1, vol, 0,
         {std::string(mp::kFailoverResultError), "1", "0", "100", "automatic, not yours"});
  // ... this is.
  Answer(sim, *guest, 1, vol, seen.request,
         {std::string(mp::kFailoverResultOk), "0", "1", "23400", "switched"});
  auto rc = tool->Wait(kWait);
  BOOST_TEST_REQUIRE(rc.ok(), rc.status().ToString());
  BOOST_TEST(*rc == 0, tool->transcript());
  BOOST_TEST(tool->transcript() == "failover of volume " + std::string(kVolume) +
                                       " (domain 1): ok, path 0 -> 1 in 23.4 ms\n",
             tool->transcript());

  // By devid, to a named path, forced, with a timeout; a failed outcome;
  // JSON.
  auto tool2 =
      sim.Spawn({"failover", "1", "1", "--to", "0", "--force", "--timeout", "5", "--json"});
  SeenRequest seen2 = AwaitRequest(*guest, 1, vol, seen.request);
  BOOST_TEST(seen2.request == 7u);
  BOOST_TEST(seen2.target.value_or("?") == "0");
  BOOST_TEST(seen2.force.value_or("?") == "1");
  BOOST_TEST(seen2.timeout_ms.value_or("?") == "5000");
  // A hostile guest's bytes in the message come out printable.
  Answer(sim, *guest, 1, vol, seen2.request,
         {std::string(mp::kFailoverResultNoMajority), "1", "1", "5001000",
          "epoch 4 refused\x1b[2J by host-b"});
  auto rc2 = tool2->Wait(kWait);
  BOOST_TEST_REQUIRE(rc2.ok(), rc2.status().ToString());
  BOOST_TEST(*rc2 == 1, tool2->transcript());
  auto j = nlohmann::json::parse(tool2->transcript(), nullptr, false);
  BOOST_TEST_REQUIRE(j.is_object(), tool2->transcript());
  BOOST_TEST(j["domain"] == 1);
  BOOST_TEST(j["volume"] == kVolume);
  BOOST_TEST(j["request"] == 7);
  BOOST_TEST(j["answered"] == true);
  BOOST_TEST(j["result"] == "no-majority");
  BOOST_TEST(j["reason"] == "operator");
  BOOST_TEST(j["from"] == 1);
  BOOST_TEST(j["to"].is_null(), j.dump());
  BOOST_TEST(j["duration_us"] == 5001000);
  BOOST_TEST(j["message"] == "epoch 4 refused?[2J by host-b");

  // The plain form of a failed outcome names the result and the message.
  auto tool3 = sim.Spawn({"failover", "1", kVolume, "--to", "1"});
  SeenRequest seen3 = AwaitRequest(*guest, 1, vol, seen2.request);
  BOOST_TEST(seen3.target.value_or("?") == "1");
  Answer(sim, *guest, 1, vol, seen3.request,
         {std::string(mp::kFailoverResultNoStandby), "0", "0", "1200", "path 1 is not connected"});
  auto rc3 = tool3->Wait(kWait);
  BOOST_TEST_REQUIRE(rc3.ok());
  BOOST_TEST(*rc3 == 1);
  BOOST_TEST(tool3->transcript() ==
                 "failover of volume " + std::string(kVolume) +
                     " (domain 1): no-standby, path 0 -> ? in 1.2 ms: path 1 is not connected\n",
             tool3->transcript());
}

BOOST_AUTO_TEST_CASE(FailoverWithoutAFrontendGivesUpAfterItsTimeout) {
  Sim sim;
  const Uuid vol = U(kVolume);
  sim.Attach(3, 0, 4, kVolume);
  const auto start = SystemClock::Instance().Now();
  auto r = sim.Tool({"failover", "3", "4", "--timeout", "1"});
  const auto took = SystemClock::Instance().Now() - start;
  ExpectOneLineError(r, 1,
                     "no answer from the frontend of domain 3 within 1 s: is a process using the "
                     "volume?");
  // The timeout plus the grace for the frontend's own timeout report.
  BOOST_TEST(took >= std::chrono::seconds(3));
  BOOST_TEST(took < std::chrono::seconds(15));
  auto req = sim.xs0->Read(platform::kNoTx, schema::MultipathKey(3, vol, mp::kFailoverRequest));
  BOOST_TEST_REQUIRE(req.ok());
  BOOST_TEST(*req == "1");
  auto t = sim.xs0->Read(platform::kNoTx, schema::MultipathKey(3, vol, mp::kFailoverTimeoutMs));
  BOOST_TEST_REQUIRE(t.ok());
  BOOST_TEST(*t == "1000");

  // --json reports the same as an object.
  auto rj = sim.Tool({"failover", "3", kVolume, "--timeout", "1", "--json"});
  BOOST_TEST(rj.exit_code == 1, rj.out);
  auto j = nlohmann::json::parse(rj.out, nullptr, false);
  BOOST_TEST_REQUIRE(j.is_object(), rj.out);
  BOOST_TEST(j["answered"] == false);
  BOOST_TEST(j["result"] == "no-answer");
  BOOST_TEST(j["request"] == 2);
}

// ---- monitor, in-process ----

struct MonitorFixture {
  MonitorFixture() {
    sim.Attach(1, 2, 0, kVolume);
    monitor = std::make_unique<tools::Monitor>(*sim.xs0, clock, tools::MonitorOptions{});
    BOOST_TEST_REQUIRE(monitor->Prime().ok());
  }
  // Writes `value` at `path` and returns the lines the change gives.
  std::vector<std::string> Change(const std::string& path, const std::string& value) {
    sim.Put(*sim.xs0, path, value);
    return Lines(path);
  }
  std::vector<std::string> Lines(const std::string& event_path) {
    std::vector<std::string> out;
    for (const auto& c : monitor->OnEvent(event_path)) out.push_back(monitor->Format(c));
    return out;
  }
  Sim sim;
  ManualClock clock{std::chrono::milliseconds(1790000000123)};
  std::unique_ptr<tools::Monitor> monitor;
};

// What the fixture's manual clock shows.
std::string Time() {
  return "2026-09-21T14:13:20.123Z";
}

BOOST_FIXTURE_TEST_CASE(MonitorTurnsChangesIntoOneLineEachWithOldAndNewValues, MonitorFixture) {
  const Uuid vol = U(kVolume);
  const std::string v = kVolume;
  using Expect = std::vector<std::string>;
  BOOST_TEST(Change(schema::FrontendKey(1, 0, fe::kState), "3") ==
                 Expect{Time() + " dom 1 vol " + v +
                        " frontend dev 0 state: Initialising(1) -> Initialised(3)"},
             boost::test_tools::per_element());
  // The same value again is no change.
  BOOST_TEST(Change(schema::FrontendKey(1, 0, fe::kState), "3").empty());
  BOOST_TEST(Change(schema::FrontendKey(1, 0, fe::kPathRole), std::string(fe::kPathRoleActive)) ==
                 Expect{Time() + " dom 1 vol " + v + " frontend dev 0 path-role: (none) -> active"},
             boost::test_tools::per_element());
  BOOST_TEST(Change(schema::BackendKey(2, 1, 0, be::kRole), std::string(be::kRolePrimary)) ==
                 Expect{Time() + " dom 2 vol " + v + " backend dev 1/0 role: (none) -> primary"},
             boost::test_tools::per_element());
  BOOST_TEST(Change(schema::MultipathKey(1, vol, mp::kStatus), std::string(mp::kStatusOptimal)) ==
                 Expect{Time() + " dom 1 vol " + v + " multipath status: (none) -> optimal"},
             boost::test_tools::per_element());
  BOOST_TEST(
      Change(schema::MultipathKey(1, vol, mp::kStatus), std::string(mp::kStatusFailingOver)) ==
          Expect{Time() + " dom 1 vol " + v + " multipath status: optimal -> failing-over"},
      boost::test_tools::per_element());
  // Values that are not one printable word are quoted.
  BOOST_TEST(Change(schema::MultipathKey(1, vol, mp::kFailoverMessage), "path 1 is gone") ==
                 Expect{Time() + " dom 1 vol " + v +
                        " multipath failover/message: (none) -> 'path 1 is gone'"},
             boost::test_tools::per_element());
}

BOOST_FIXTURE_TEST_CASE(MonitorIgnoresStatisticsAndUnknownNodes, MonitorFixture) {
  BOOST_TEST(Change(schema::BackendKey(2, 1, 0, be::kStatRequests), "12").empty());
  BOOST_TEST(Change(schema::BackendKey(2, 1, 0, be::kStatDurableSequence), "9").empty());
  BOOST_TEST(Change(schema::BackendKey(2, 1, 0, be::kRegionPages), "256").empty());
  BOOST_TEST(Change(schema::FrontendKey(1, 0, fe::kRingRef), "8").empty());
  BOOST_TEST(Change(schema::DaemonKey(2, dk::PeerEndpoint("host-b")), "tcp://x:1").empty());
  BOOST_TEST(Change(schema::ReplicationKey(2, U(kVolume), rk::kSequence), "77").empty());
  BOOST_TEST(Lines("@releaseDomain").empty());
  // A rescan of everything finds nothing new either.
  BOOST_TEST(Lines(std::string(schema::kDomainRoot)).empty());
}

BOOST_FIXTURE_TEST_CASE(MonitorReportsReplicationAndDaemonKeys, MonitorFixture) {
  const Uuid vol = U(kVolume);
  const std::string v = kVolume;
  using Expect = std::vector<std::string>;
  BOOST_TEST(Change(schema::ReplicationKey(2, vol, rk::ReplicaState("host-b")),
                    std::string(rk::kReplicaStateSyncing)) ==
                 Expect{Time() + " dom 2 vol " + v +
                        " replication replica/host-b/state: (none) -> " + "syncing"},
             boost::test_tools::per_element());
  BOOST_TEST(Change(schema::ReplicationKey(2, vol, rk::kServing), "1") ==
                 Expect{Time() + " dom 2 vol " + v + " replication serving: (none) -> 1"},
             boost::test_tools::per_element());
  BOOST_TEST(
      Change(schema::DaemonKey(2, dk::PeerState("host-b")), std::string(dk::kPeerStateDown)) ==
          Expect{Time() + " dom 2 vol - daemon peer/host-b/state: (none) -> down"},
      boost::test_tools::per_element());
}

BOOST_FIXTURE_TEST_CASE(MonitorReportsEveryNodeOfARemovedDirectory, MonitorFixture) {
  const Uuid vol = U(kVolume);
  const std::string v = kVolume;
  using Expect = std::vector<std::string>;
  (void)Change(schema::MultipathKey(1, vol, mp::kActivePath), "0");
  (void)Change(schema::MultipathKey(1, vol, mp::kFailoverResult), "ok");
  // xenstored fires once, for the removed directory.
  BOOST_TEST_REQUIRE(sim.xs0->Remove(platform::kNoTx, schema::MultipathDir(1, vol)).ok());
  BOOST_TEST(Lines(schema::MultipathDir(1, vol)) ==
                 Expect({Time() + " dom 1 vol " + v + " multipath active-path: 0 -> removed",
                         Time() + " dom 1 vol " + v + " multipath failover/result: ok -> removed"}),
             boost::test_tools::per_element());
  // A device directory removed: its volume is still named.
  BOOST_TEST_REQUIRE(sim.xs0->Remove(platform::kNoTx, schema::FrontendDir(1, 0)).ok());
  BOOST_TEST(Lines(schema::FrontendDir(1, 0)) ==
                 Expect{Time() + " dom 1 vol " + v + " frontend dev 0 state: Initialising(1) -> " +
                        "removed"},
             boost::test_tools::per_element());
  // A directory created with keys in it (one event for the directory).
  sim.Attach(1, 2, 3, kOtherVolume);
  auto lines = Lines(schema::FrontendRoot(1));
  BOOST_TEST(lines == Expect{Time() + " dom 1 vol " + std::string(kOtherVolume) +
                             " frontend dev 3 state: (none) -> Initialising(1)"},
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(MonitorJsonAndDomainFilter) {
  Sim sim;
  sim.Attach(1, 2, 0, kVolume);
  sim.Attach(3, 2, 0, kOtherVolume);
  ManualClock clock{std::chrono::milliseconds(1790000000123)};
  tools::Monitor m(*sim.xs0, clock, tools::MonitorOptions{true, DomId{1}});
  BOOST_TEST_REQUIRE(m.Prime().ok());
  auto change = [&](const std::string& path, const std::string& value) {
    sim.Put(*sim.xs0, path, value);
    return m.OnEvent(path);
  };
  // Domain 3's own nodes and the backends serving it are filtered out ...
  BOOST_TEST(change(schema::FrontendKey(3, 0, fe::kState), "3").empty());
  BOOST_TEST(change(schema::BackendKey(2, 3, 0, be::kState), "2").empty());
  BOOST_TEST(change(schema::DaemonKey(2, dk::kStatus), "running").empty());
  // ... the backend serving domain 1 is not.
  auto c = change(schema::BackendKey(2, 1, 0, be::kState), "2");
  BOOST_TEST_REQUIRE(c.size() == 1u);
  auto j = nlohmann::json::parse(m.Format(c[0]), nullptr, false);
  BOOST_TEST_REQUIRE(j.is_object(), m.Format(c[0]));
  BOOST_TEST(j["time"] == Time());
  BOOST_TEST(j["domain"] == 2);
  BOOST_TEST(j["kind"] == "backend");
  BOOST_TEST(j["path"] == schema::BackendKey(2, 1, 0, be::kState));
  BOOST_TEST(j["key"] == "state");
  BOOST_TEST(j["old"] == "1");
  BOOST_TEST(j["new"] == "2");
  BOOST_TEST(j["volume"] == kVolume);
  BOOST_TEST(j["devid"] == 0);
  BOOST_TEST(j["frontend_domain"] == 1);
  // Removed: new is null. Bytes that are not UTF-8 do not break the line.
  auto bad = change(schema::FrontendKey(1, 0, fe::kPathRole), std::string("\xff\xfe", 2));
  BOOST_TEST_REQUIRE(bad.size() == 1u);
  BOOST_TEST(nlohmann::json::parse(m.Format(bad[0]), nullptr, false).is_object());
  BOOST_TEST_REQUIRE(
      sim.xs0->Remove(platform::kNoTx, schema::FrontendKey(1, 0, fe::kPathRole)).ok());
  auto gone = m.OnEvent(schema::FrontendKey(1, 0, fe::kPathRole));
  BOOST_TEST_REQUIRE(gone.size() == 1u);
  auto jg = nlohmann::json::parse(m.Format(gone[0]), nullptr, false);
  BOOST_TEST(jg["new"].is_null());
  BOOST_TEST(jg["kind"] == "frontend");
}

// ---- monitor, as a process ----

BOOST_AUTO_TEST_CASE(MonitorProcessFollowsChangesLiveAndStopsOnSignals) {
  Sim sim;
  const Uuid vol = U(kVolume);
  sim.Attach(1, 2, 0, kVolume);
  auto mon = sim.Spawn({"monitor", "--json"});
  BOOST_TEST_REQUIRE(mon->WaitForLine("nvram-tool monitor: watching", kWait).ok(),
                     mon->transcript());
  auto next = [&]() {
    auto line = mon->NextLine(kWait);
    BOOST_TEST_REQUIRE(line.ok(), line.status().ToString());
    auto j = nlohmann::json::parse(*line, nullptr, false);
    BOOST_TEST_REQUIRE(j.is_object(), *line);
    return j;
  };
  // Statistics first: if they gave a line, it would come before the next.
  sim.Put(*sim.xs0, schema::BackendKey(2, 1, 0, be::kStatRequests), "10");
  sim.Put(*sim.xs0, schema::BackendKey(2, 1, 0, be::kStatDurableSequence), "10");
  sim.Put(*sim.xs0, schema::MultipathKey(1, vol, mp::kStatus), std::string(mp::kStatusOptimal));
  auto j = next();
  BOOST_TEST(j["kind"] == "multipath");
  BOOST_TEST(j["key"] == "status");
  BOOST_TEST(j["old"].is_null());
  BOOST_TEST(j["new"] == "optimal");
  BOOST_TEST(j["domain"] == 1);
  sim.Put(*sim.xs0, schema::MultipathKey(1, vol, mp::kStatus), std::string(mp::kStatusFailingOver));
  j = next();
  BOOST_TEST(j["old"] == "optimal");
  BOOST_TEST(j["new"] == "failing-over");
  sim.Put(*sim.xs0, schema::BackendKey(2, 1, 0, be::kState), "2");
  j = next();
  BOOST_TEST(j["kind"] == "backend");
  BOOST_TEST(j["domain"] == 2);
  BOOST_TEST(j["frontend_domain"] == 1);
  BOOST_TEST(j["old"] == "1");
  BOOST_TEST(j["new"] == "2");
  BOOST_TEST_REQUIRE(sim.xs0->Remove(platform::kNoTx, schema::MultipathDir(1, vol)).ok());
  j = next();
  BOOST_TEST(j["key"] == "status");
  BOOST_TEST(j["old"] == "failing-over");
  BOOST_TEST(j["new"].is_null());
  BOOST_TEST_REQUIRE(::kill(mon->pid(), SIGTERM) == 0);
  auto rc = mon->Wait(kWait);
  BOOST_TEST_REQUIRE(rc.ok(), rc.status().ToString());
  BOOST_TEST(*rc == 0, mon->transcript());

  // Plain format, one domain, SIGINT.
  auto plain = sim.Spawn({"monitor", "--domain", "1"});
  BOOST_TEST_REQUIRE(plain->WaitForLine("nvram-tool monitor: watching", kWait).ok(),
                     plain->transcript());
  sim.Put(*sim.xs0, schema::DaemonKey(2, dk::kStatus), std::string(dk::kStatusRunning));
  sim.Put(*sim.xs0, schema::FrontendKey(1, 0, fe::kState), "3");
  auto line = plain->NextLine(kWait);
  BOOST_TEST_REQUIRE(line.ok(), line.status().ToString());
  const size_t dom = line->find(" dom ");
  BOOST_TEST_REQUIRE(dom != std::string::npos, *line);
  BOOST_TEST(line->substr(dom) == " dom 1 vol " + std::string(kVolume) +
                                      " frontend dev 0 state: Initialising(1) -> Initialised(3)");
  BOOST_TEST(line->size() > dom);
  BOOST_TEST((*line)[dom - 1] == 'Z', *line);
  BOOST_TEST_REQUIRE(::kill(plain->pid(), SIGINT) == 0);
  auto rc2 = plain->Wait(kWait);
  BOOST_TEST_REQUIRE(rc2.ok());
  BOOST_TEST(*rc2 == 0, plain->transcript());

  auto bad = sim.Tool({"monitor", "--domain", "x"});
  ExpectOneLineError(bad, 2, "--domain 'x'");
}

}  // namespace
}  // namespace vnvram
