// vnvram-schema-check and XenStoreTreeSource against the sim xenstored run
// as a real process: a device written the way the toolstack and both ends
// write it is clean; a guest's stray key, a wrong permission and a missing
// feature are found; the CLI's exit codes are 0, 1 and 2.
#define BOOST_TEST_MODULE schema_check_sim_test
#include <boost/test/unit_test.hpp>

#include "platform/platform.h"
#include "platform/sim/xenstored/testing/xenstored_process.h"
#include "xenstore-schema/schema.h"
#include "xenstore-schema/validator.h"
#include "xenstore-schema/xenstore_tree_source.h"

namespace vnvram::schema {
namespace {

using platform::Perm;
using platform::PermEntry;
using sim::testing::XenstoredProcess;

constexpr DomId kB = 0;
constexpr DomId kF = 5;
constexpr DevId kDev = 0;
constexpr std::string_view kVol = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
constexpr std::string_view kCheck = VNVRAM_BIN_DIR "/vnvram-schema-check";

struct Sim {
  std::unique_ptr<XenstoredProcess> daemon;
  std::unique_ptr<platform::Platform> dom0;
  std::unique_ptr<platform::XenStore> xs;

  Sim() {
    auto d = XenstoredProcess::Start({kF});
    BOOST_REQUIRE_MESSAGE(d.ok(), d.status().ToString());
    daemon = std::move(d).value();
    auto p = platform::OpenSimPlatform({daemon->socket_dir(), kB});
    BOOST_REQUIRE_MESSAGE(p.ok(), p.status().ToString());
    dom0 = std::move(p).value();
    auto x = dom0->OpenXenStore();
    BOOST_REQUIRE_MESSAGE(x.ok(), x.status().ToString());
    xs = std::move(x).value();
  }

  // What the toolstack, vnvramd and libvnvram write for a connected device.
  void WriteConnectedDevice() {
    const std::vector<std::pair<std::string, std::string>> fe = {
        {std::string(fe::kBackend), BackendDir(kB, kF, kDev)},
        {std::string(fe::kBackendId), "0"},
        {std::string(fe::kState), "4"},
        {std::string(fe::kVolume), std::string(kVol)},
        {std::string(fe::kRingRef), "8"},
        {std::string(fe::kEventChannel), "7"}};
    const std::vector<std::pair<std::string, std::string>> be = {
        {std::string(be::kFrontend), FrontendDir(kF, kDev)},
        {std::string(be::kFrontendId), "5"},
        {std::string(be::kOnline), "1"},
        {std::string(be::kState), "4"},
        {std::string(be::kVolume), std::string(kVol)},
        {std::string(be::kHotplugStatus), std::string(be::kHotplugStatusConnected)},
        {std::string(be::kMaxRingPageOrder), "2"},
        {std::string(be::kRegionSize), "4194304"},
        {std::string(be::kRegionPages), "1024"},
        {std::string(be::kPageDirRefs), "1"},
        {std::string(be::PageDirRef(0)), "33"},
        {std::string(be::kFeaturePersist), "1"},
        {std::string(be::kFeatureFlush), "1"},
        {std::string(be::kFeatureBarrier), "1"},
        {std::string(be::kFeatureCopyMode), "0"}};
    Status s = platform::RunTransaction(*xs, [&](platform::TxId tx) -> Status {
      const PermEntry fe_perms[] = {{kF, Perm::kNone}, {kB, Perm::kRead}};
      const PermEntry be_perms[] = {{kB, Perm::kNone}, {kF, Perm::kRead}};
      VNVRAM_RETURN_IF_ERROR(xs->Mkdir(tx, FrontendDir(kF, kDev)));
      VNVRAM_RETURN_IF_ERROR(xs->SetPermissions(tx, FrontendDir(kF, kDev), fe_perms));
      VNVRAM_RETURN_IF_ERROR(xs->Mkdir(tx, BackendDir(kB, kF, kDev)));
      VNVRAM_RETURN_IF_ERROR(xs->SetPermissions(tx, BackendDir(kB, kF, kDev), be_perms));
      for (const auto& [k, v] : fe) {
        VNVRAM_RETURN_IF_ERROR(xs->Write(tx, FrontendKey(kF, kDev, k), v));
        VNVRAM_RETURN_IF_ERROR(xs->SetPermissions(tx, FrontendKey(kF, kDev, k), fe_perms));
      }
      for (const auto& [k, v] : be) {
        VNVRAM_RETURN_IF_ERROR(xs->Write(tx, BackendKey(kB, kF, kDev, k), v));
        VNVRAM_RETURN_IF_ERROR(xs->SetPermissions(tx, BackendKey(kB, kF, kDev, k), be_perms));
      }
      return {};
    });
    BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
  }

  std::vector<Finding> Check() {
    auto src = XenStoreTreeSource::Open(*xs, /*snapshot=*/true);
    BOOST_REQUIRE_MESSAGE(src.ok(), src.status().ToString());
    auto fs = Validator(BuiltinSchema()).Check(**src);
    BOOST_REQUIRE_MESSAGE(fs.ok(), fs.status().ToString());
    return *fs;
  }

  sim::testing::ProgramResult RunCheck(std::vector<std::string> args) {
    args.insert(args.begin(), std::string(kCheck));
    auto r = sim::testing::RunProgram(args, {});
    BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    return *r;
  }
};

bool Has(const std::vector<Finding>& fs, const std::string& path, std::string_view rule) {
  for (const auto& f : fs) {
    if (f.path == path && f.rule == rule) return true;
  }
  return false;
}

BOOST_AUTO_TEST_CASE(ConnectedDeviceOnTheSimStoreIsClean) {
  Sim sim;
  sim.WriteConnectedDevice();
  auto fs = sim.Check();
  BOOST_TEST(fs.empty(), FormatFindingsText(fs));
}

BOOST_AUTO_TEST_CASE(DamageOnTheSimStoreIsFound) {
  Sim sim;
  sim.WriteConnectedDevice();
  // The guest writes a key the schema does not have, through its own socket.
  auto guest = platform::OpenSimPlatform({sim.daemon->socket_dir(), kF});
  BOOST_REQUIRE(guest.ok());
  auto gxs = (*guest)->OpenXenStore();
  BOOST_REQUIRE(gxs.ok());
  const std::string stray = FrontendDir(kF, kDev) + "/surprise";
  BOOST_REQUIRE((*gxs)->Write(platform::kNoTx, stray, "1").ok());
  BOOST_REQUIRE(sim.xs->Remove(platform::kNoTx, BackendKey(kB, kF, kDev, be::kFeatureFlush)).ok());
  const PermEntry open[] = {{kB, Perm::kRead}};
  BOOST_REQUIRE(
      sim.xs->SetPermissions(platform::kNoTx, BackendKey(kB, kF, kDev, be::kState), open).ok());
  auto fs = sim.Check();
  BOOST_TEST(Has(fs, stray, kRuleUnknownKey), FormatFindingsText(fs));
  BOOST_TEST(Has(fs, BackendKey(kB, kF, kDev, be::kFeatureFlush), kRuleMissingKey),
             FormatFindingsText(fs));
  BOOST_TEST(Has(fs, BackendKey(kB, kF, kDev, be::kState), kRuleBadPerms), FormatFindingsText(fs));
}

BOOST_AUTO_TEST_CASE(CliExitCodes) {
  Sim sim;
  sim.WriteConnectedDevice();
  const std::string spec = "sim:" + sim.daemon->socket_dir() + ":0";
  auto clean = sim.RunCheck({"--platform", spec});
  BOOST_TEST(clean.exit_code == 0, clean.out);
  BOOST_REQUIRE(sim.xs->Write(platform::kNoTx, FrontendDir(kF, kDev) + "/junk", "1").ok());
  auto dirty = sim.RunCheck({"--platform", spec, "--json"});
  BOOST_TEST(dirty.exit_code == 1, dirty.out);
  BOOST_TEST(dirty.out.find("\"rule\": \"unknown-key\"") != std::string::npos, dirty.out);
  // A guest may not list /local/domain: it checks its own nodes.
  auto guest = sim.RunCheck({"--platform", "sim:" + sim.daemon->socket_dir() + ":5"});
  BOOST_TEST(guest.exit_code == 1, guest.out);
  BOOST_TEST(guest.out.find("junk") != std::string::npos, guest.out);
  auto bad = sim.RunCheck({"--platform", "sim:/nonexistent-dir:0"});
  BOOST_TEST(bad.exit_code == 2, bad.out);
  auto usage = sim.RunCheck({"--frobnicate"});
  BOOST_TEST(usage.exit_code == 2, usage.out);
}

}  // namespace
}  // namespace vnvram::schema
