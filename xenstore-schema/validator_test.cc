// Tests of the validator on in-memory trees: a clean device passes, and each
// kind of damage (unknown keys, bad types, ranges, missing keys per state,
// permissions, state pairs, cross-end invariants) is reported at its path.
#include "xenstore-schema/validator.h"

#include <boost/test/unit_test.hpp>

#include "xenstore-schema/memory_tree.h"
#include "xenstore-schema/schema.h"

namespace vnvram::schema {
namespace {

using platform::Perm;

constexpr DomId kB = 0;
constexpr DomId kF = 5;
constexpr DevId kDev = 0;
constexpr std::string_view kVol = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";

// A guest kF with one connected device served by kB, written the way the
// toolstack, vnvramd and libvnvram write it.
struct Tree {
  MemoryTree t;

  Tree() {
    Device(kB, kF, kDev, 4, 4);
    const std::string d = DaemonDir(kB);
    t.Write(DaemonKey(kB, daemon::kHostId), "host-a");
    t.Write(DaemonKey(kB, daemon::kPid), "1234");
    t.Write(DaemonKey(kB, daemon::kStatus), daemon::kStatusRunning);
    t.SetPermissionsRecursive(DomainVnvramDir(kB), {{kB, Perm::kNone}});
  }

  void Device(DomId b, DomId f, DevId dev, int fe_state, int be_state) {
    const auto fk = [&](std::string_view k) { return FrontendKey(f, dev, k); };
    const auto bk = [&](std::string_view k) { return BackendKey(b, f, dev, k); };
    t.Write(fk(fe::kBackend), BackendDir(b, f, dev));
    t.Write(fk(fe::kBackendId), std::to_string(b));
    t.Write(fk(fe::kState), std::to_string(fe_state));
    t.Write(fk(fe::kVolume), kVol);
    if (fe_state == 3 || fe_state == 4) {
      t.Write(fk(fe::kRingRef), "8");
      t.Write(fk(fe::kEventChannel), "7");
      t.Write(fk(fe::kProtocol), fe::kProtocolX86_64Abi);
    }
    t.Write(bk(be::kFrontend), FrontendDir(f, dev));
    t.Write(bk(be::kFrontendId), std::to_string(f));
    t.Write(bk(be::kOnline), "1");
    t.Write(bk(be::kState), std::to_string(be_state));
    t.Write(bk(be::kVolume), kVol);
    if (be_state == 2 || be_state == 4) {
      t.Write(bk(be::kHotplugStatus), be::kHotplugStatusConnected);
      t.Write(bk(be::kMaxRingPageOrder), "4");
      t.Write(bk(be::kRegionSize), "8388608");
      t.Write(bk(be::kRegionPages), "2048");
      t.Write(bk(be::kPageDirRefs), "2");
      t.Write(bk(be::PageDirRef(0)), "100");
      t.Write(bk(be::PageDirRef(1)), "101");
      for (auto k :
           {be::kFeaturePersist, be::kFeatureFlush, be::kFeatureBarrier, be::kFeatureCopyMode}) {
        t.Write(bk(k), "1");
      }
    }
    if (be_state == 4) {
      t.Write(bk(be::kStatRequests), "10");
      t.Write(bk(be::kStatPersistLatencyP50Ns), "5000");
    }
    FixPerms(b, f, dev);
  }

  void FixPerms(DomId b, DomId f, DevId dev) {
    t.SetPermissionsRecursive(FrontendDir(f, dev), {{f, Perm::kNone}, {b, Perm::kRead}});
    t.SetPermissionsRecursive(BackendDir(b, f, dev), {{b, Perm::kNone}, {f, Perm::kRead}});
  }

  std::vector<Finding> Check(ValidatorOptions o = {}) {
    Validator v(BuiltinSchema(), std::move(o));
    auto r = v.Check(t);
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

std::string Dump(const std::vector<Finding>& fs) {
  return "\n" + FormatFindingsText(fs);
}

BOOST_AUTO_TEST_SUITE(ValidatorChecks)

BOOST_AUTO_TEST_CASE(CleanConnectedDeviceHasNoFindings) {
  Tree tree;
  auto fs = tree.Check();
  BOOST_TEST(fs.empty(), Dump(fs));
}

BOOST_AUTO_TEST_CASE(FreshlyCreatedDeviceIsClean) {
  Tree tree;
  tree.Device(kB, kF, 1, 1, 1);
  auto fs = tree.Check();
  BOOST_TEST(fs.empty(), Dump(fs));
}

BOOST_AUTO_TEST_CASE(UnknownKeysAreReported) {
  Tree tree;
  tree.t.Write(FrontendKey(kF, kDev, "ring-reff"), "1");  // schema-lint: allow
  tree.t.Write(DomainVnvramDir(kF) + "/bogus", "x");
  tree.t.Write(BackendRoot(kB) + "/" + std::to_string(kF) + "/notadevid", "");
  tree.t.Write(BackendKey(kB, kF, kDev, "statistics/wat"), "1");  // schema-lint: allow
  auto fs = tree.Check();
  BOOST_TEST(Has(fs, FrontendKey(kF, kDev, "ring-reff"), kRuleUnknownKey), Dump(fs));
  BOOST_TEST(Has(fs, DomainVnvramDir(kF) + "/bogus", kRuleUnknownKey), Dump(fs));
  BOOST_TEST(Has(fs, BackendRoot(kB) + "/5/notadevid", kRuleUnknownKey), Dump(fs));
  BOOST_TEST(Has(fs, BackendKey(kB, kF, kDev, "statistics/wat"), kRuleUnknownKey), Dump(fs));
  BOOST_TEST(fs.size() == 4u, Dump(fs));
}

BOOST_AUTO_TEST_CASE(NonCanonicalDeviceIdIsUnknown) {
  Tree tree;
  tree.t.Write(FrontendRoot(kF) + "/00/state", "1");
  auto fs = tree.Check();
  BOOST_TEST(Has(fs, FrontendRoot(kF) + "/00", kRuleUnknownKey), Dump(fs));
}

BOOST_AUTO_TEST_CASE(BadTypesAndRangesAreReported) {
  Tree tree;
  tree.t.Write(FrontendKey(kF, kDev, fe::kEventChannel), "seven");
  tree.t.Write(FrontendKey(kF, kDev, fe::kProtocol), "sparc-abi");
  tree.t.Write(BackendKey(kB, kF, kDev, be::kOnline), "yes");
  tree.t.Write(BackendKey(kB, kF, kDev, be::kMaxRingPageOrder), "9");
  tree.t.Write(FrontendKey(kF, kDev, fe::kVolume), "0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0");
  tree.t.Write(FrontendKey(kF, kDev, fe::kError), std::string(2000, 'x'));
  auto fs = tree.Check();
  BOOST_TEST(Has(fs, FrontendKey(kF, kDev, fe::kEventChannel), "bad-type"), Dump(fs));
  BOOST_TEST(Has(fs, FrontendKey(kF, kDev, fe::kProtocol), "bad-value"), Dump(fs));
  BOOST_TEST(Has(fs, BackendKey(kB, kF, kDev, be::kOnline), "bad-type"), Dump(fs));
  BOOST_TEST(Has(fs, BackendKey(kB, kF, kDev, be::kMaxRingPageOrder), "out-of-range"), Dump(fs));
  BOOST_TEST(Has(fs, FrontendKey(kF, kDev, fe::kVolume), "bad-value"), Dump(fs));
  BOOST_TEST(Has(fs, FrontendKey(kF, kDev, fe::kError), "out-of-range"), Dump(fs));
}

BOOST_AUTO_TEST_CASE(EventChannelZeroIsOutOfRange) {
  Tree tree;
  tree.t.Write(FrontendKey(kF, kDev, fe::kEventChannel), "0");
  auto fs = tree.Check();
  BOOST_TEST(Has(fs, FrontendKey(kF, kDev, fe::kEventChannel), "out-of-range"), Dump(fs));
}

BOOST_AUTO_TEST_CASE(BackendInInitWaitMustHavePublishedItsFeatures) {
  Tree tree;
  tree.Device(kB, kF, 1, 1, 2);
  tree.t.Remove(BackendKey(kB, kF, 1, be::kRegionSize));
  tree.t.Remove(BackendKey(kB, kF, 1, be::kFeaturePersist));
  tree.t.Remove(BackendKey(kB, kF, 1, be::PageDirRef(1)));
  auto fs = tree.Check();
  BOOST_TEST(Has(fs, BackendKey(kB, kF, 1, be::kRegionSize), kRuleMissingKey), Dump(fs));
  BOOST_TEST(Has(fs, BackendKey(kB, kF, 1, be::kFeaturePersist), kRuleMissingKey), Dump(fs));
  BOOST_TEST(Has(fs, BackendKey(kB, kF, 1, be::PageDirRef(1)), kRuleMissingKey), Dump(fs));
  BOOST_TEST(fs.size() == 3u, Dump(fs));
}

BOOST_AUTO_TEST_CASE(FrontendInitialisedNeedsTransportKeys) {
  Tree tree;
  tree.Device(kB, kF, 1, 3, 2);
  tree.t.Remove(FrontendKey(kF, 1, fe::kEventChannel));
  tree.t.Remove(FrontendKey(kF, 1, fe::kRingRef));
  auto fs = tree.Check();
  BOOST_TEST(Has(fs, FrontendKey(kF, 1, fe::kEventChannel), kRuleMissingKey), Dump(fs));
  BOOST_TEST(Has(fs, FrontendKey(kF, 1, fe::kRingRef), kRuleMissingKey), Dump(fs));
}

BOOST_AUTO_TEST_CASE(AlwaysRequiredKeysAreMissingInAnyState) {
  Tree tree;
  tree.t.Remove(BackendKey(kB, kF, kDev, be::kOnline));
  auto fs = tree.Check();
  BOOST_TEST(Has(fs, BackendKey(kB, kF, kDev, be::kOnline), kRuleMissingKey), Dump(fs));
}

BOOST_AUTO_TEST_CASE(MultiPageRingUsesIndexedRefs) {
  Tree tree;
  tree.t.Write(FrontendKey(kF, kDev, fe::kRingPageOrder), "1");
  tree.t.Write(FrontendKey(kF, kDev, fe::RingRefN(0)), "20");
  tree.t.Write(FrontendKey(kF, kDev, fe::RingRefN(2)), "22");
  tree.FixPerms(kB, kF, kDev);
  auto fs = tree.Check();
  // ring-ref is for order 0 only; ring-ref1 is missing; ring-ref2 is beyond 2^1.
  BOOST_TEST(Has(fs, FrontendKey(kF, kDev, fe::kRingRef), kRuleUnexpectedKey), Dump(fs));
  BOOST_TEST(Has(fs, FrontendKey(kF, kDev, fe::RingRefN(1)), kRuleMissingKey), Dump(fs));
  BOOST_TEST(Has(fs, FrontendKey(kF, kDev, fe::RingRefN(2)), kRuleUnexpectedKey), Dump(fs));
  BOOST_TEST(fs.size() == 3u, Dump(fs));
}

BOOST_AUTO_TEST_CASE(RingOrderAboveBackendMaximumIsReported) {
  Tree tree;
  tree.t.Write(BackendKey(kB, kF, kDev, be::kMaxRingPageOrder), "0");
  tree.t.Remove(FrontendKey(kF, kDev, fe::kRingRef));
  tree.t.Write(FrontendKey(kF, kDev, fe::kRingPageOrder), "1");
  tree.t.Write(FrontendKey(kF, kDev, fe::RingRefN(0)), "20");
  tree.t.Write(FrontendKey(kF, kDev, fe::RingRefN(1)), "21");
  tree.FixPerms(kB, kF, kDev);
  auto fs = tree.Check();
  BOOST_TEST(Has(fs, FrontendKey(kF, kDev, fe::kRingPageOrder), "ring-order-within-max"), Dump(fs));
  BOOST_TEST(fs.size() == 1u, Dump(fs));
}

BOOST_AUTO_TEST_CASE(WrongPermissionsAreReported) {
  Tree tree;
  // The backend cannot read the frontend's event channel; another domain can
  // read the backend's state.
  tree.t.SetPermissions(FrontendKey(kF, kDev, fe::kEventChannel), {{kF, Perm::kNone}});
  tree.t.SetPermissions(BackendKey(kB, kF, kDev, be::kState),
                        {{kB, Perm::kNone}, {kF, Perm::kRead}, {7, Perm::kRead}});
  tree.t.SetPermissions(BackendDir(kB, kF, kDev), {{kF, Perm::kNone}, {kB, Perm::kRead}});
  auto fs = tree.Check();
  BOOST_TEST(Has(fs, FrontendKey(kF, kDev, fe::kEventChannel), kRuleBadPerms), Dump(fs));
  BOOST_TEST(Has(fs, BackendKey(kB, kF, kDev, be::kState), kRuleBadPerms), Dump(fs));
  BOOST_TEST(Has(fs, BackendDir(kB, kF, kDev), kRuleBadPerms), Dump(fs));
  BOOST_TEST(fs.size() == 3u, Dump(fs));
  ValidatorOptions no_perms;
  no_perms.check_perms = false;
  BOOST_TEST(tree.Check(no_perms).empty());
}

BOOST_AUTO_TEST_CASE(ConnectedFrontendWithoutBackendIsIllegal) {
  Tree tree;
  tree.t.Remove(BackendDir(kB, kF, kDev));
  auto fs = tree.Check();
  BOOST_TEST(Has(fs, FrontendDir(kF, kDev), "state-pair"), Dump(fs));
}

BOOST_AUTO_TEST_CASE(LiveBackendWithoutFrontendIsIllegal) {
  Tree tree;
  tree.t.Remove(FrontendDir(kF, kDev));
  auto fs = tree.Check();
  BOOST_TEST(Has(fs, BackendDir(kB, kF, kDev), "state-pair"), Dump(fs));
}

BOOST_AUTO_TEST_CASE(TransientPairsOnlyOnRequest) {
  Tree tree;
  tree.Device(kB, kF, 1, 4, 2);  // backend restarted under a connected frontend
  tree.t.Write(FrontendKey(kF, 1, fe::kRingRef), "8");
  BOOST_TEST(tree.Check().empty(), Dump(tree.Check()));
  ValidatorOptions o;
  o.report_transient = true;
  BOOST_TEST(Has(tree.Check(o), FrontendDir(kF, 1), "state-pair"));
}

BOOST_AUTO_TEST_CASE(StateAnEndNeverUsesIsReported) {
  Tree tree;
  tree.t.Write(FrontendKey(kF, kDev, fe::kState), "2");
  tree.t.Write(BackendKey(kB, kF, kDev, be::kState), "8");
  auto fs = tree.Check();
  BOOST_TEST(Has(fs, FrontendKey(kF, kDev, fe::kState), "state-used-by-end"), Dump(fs));
  BOOST_TEST(Has(fs, BackendKey(kB, kF, kDev, be::kState), "state-used-by-end"), Dump(fs));
}

BOOST_AUTO_TEST_CASE(EndsThatDisagreeAreReported) {
  Tree tree;
  tree.t.Write(FrontendKey(kF, kDev, fe::kBackend), BackendDir(kB, kF, 9));
  tree.t.Write(BackendKey(kB, kF, kDev, be::kFrontend), FrontendDir(6, kDev));
  tree.t.Write(BackendKey(kB, kF, kDev, be::kFrontendId), "6");
  tree.t.Write(BackendKey(kB, kF, kDev, be::kVolume), "11111111-2222-3333-4444-555555555555");
  auto fs = tree.Check();
  BOOST_TEST(Has(fs, FrontendKey(kF, kDev, fe::kBackend), "backend-path-matches"), Dump(fs));
  BOOST_TEST(Has(fs, BackendKey(kB, kF, kDev, be::kFrontend), "frontend-path-matches"), Dump(fs));
  BOOST_TEST(Has(fs, BackendKey(kB, kF, kDev, be::kFrontendId), "frontend-path-matches"), Dump(fs));
  BOOST_TEST(Has(fs, FrontendKey(kF, kDev, fe::kVolume), "volume-matches"), Dump(fs));
}

BOOST_AUTO_TEST_CASE(RegionGeometryMustAddUp) {
  Tree tree;
  tree.t.Write(BackendKey(kB, kF, kDev, be::kRegionSize), "4096");
  tree.t.Write(BackendKey(kB, kF, kDev, be::kPageDirRefs), "1");
  auto fs = tree.Check();
  BOOST_TEST(Has(fs, BackendKey(kB, kF, kDev, be::kRegionSize), "region-geometry"), Dump(fs));
  BOOST_TEST(Has(fs, BackendKey(kB, kF, kDev, be::kPageDirRefs), "region-geometry"), Dump(fs));
  // page-dir-ref-1 is now beyond page-dir-refs.
  BOOST_TEST(Has(fs, BackendKey(kB, kF, kDev, be::PageDirRef(1)), kRuleUnexpectedKey), Dump(fs));
}

BOOST_AUTO_TEST_CASE(MultipathActivePathIsChecked) {
  Tree tree;
  tree.Device(kB, kF, 1, 4, 4);
  tree.t.Write(FrontendKey(kF, kDev, fe::kPathRole), fe::kPathRoleActive);
  tree.t.Write(FrontendKey(kF, 1, fe::kPathRole), fe::kPathRoleActive);
  tree.FixPerms(kB, kF, kDev);
  tree.FixPerms(kB, kF, 1);
  const Uuid vol = *ParseUuid(kVol);
  tree.t.Write(MultipathKey(kF, vol, mp::kActivePath), "7");
  tree.t.Write(MultipathKey(kF, vol, mp::kFailoverState), mp::kFailoverStateDone);
  tree.t.Write(MultipathKey(kF, vol, mp::kFailoverDurationUs), "4200");
  tree.t.SetPermissionsRecursive(DomainVnvramDir(kF), {{kF, Perm::kNone}});
  auto fs = tree.Check();
  BOOST_TEST(Has(fs, FrontendKey(kF, 1, fe::kPathRole), "single-active-path"), Dump(fs));
  BOOST_TEST(Has(fs, MultipathKey(kF, vol, mp::kActivePath), "single-active-path"), Dump(fs));
  BOOST_TEST(fs.size() == 2u, Dump(fs));
}

BOOST_AUTO_TEST_CASE(ReplicationAndDaemonTreesAreChecked) {
  Tree tree;
  const Uuid vol = *ParseUuid(kVol);
  tree.t.Write(ReplicationKey(kB, vol, repl::kSize), "8388608");
  tree.t.Write(ReplicationKey(kB, vol, repl::kPolicy), repl::kPolicySync);
  tree.t.Write(ReplicationKey(kB, vol, repl::kRole), repl::kRolePrimary);
  tree.t.Write(ReplicationKey(kB, vol, repl::kEpoch), "3");
  tree.t.Write(ReplicationKey(kB, vol, repl::ReplicaState("host-b")), repl::kReplicaStateSyncing);
  tree.t.Write(ReplicationKey(kB, vol, repl::ReplicaProgress("host-b")), "140");
  tree.t.Write(DaemonKey(kB, daemon::PeerState("bad host")), "up");
  tree.t.SetPermissionsRecursive(DomainVnvramDir(kB), {{kB, Perm::kNone}});
  auto fs = tree.Check();
  BOOST_TEST(Has(fs, ReplicationKey(kB, vol, repl::kSequence), kRuleMissingKey), Dump(fs));
  BOOST_TEST(Has(fs, ReplicationKey(kB, vol, repl::ReplicaProgress("host-b")), "out-of-range"),
             Dump(fs));
  BOOST_TEST(Has(fs, DaemonDir(kB) + "/peer/bad host", kRuleUnknownKey), Dump(fs));
}

BOOST_AUTO_TEST_CASE(DomainRootCanBeMoved) {
  MemoryTree t;
  Tree src;
  // Copy the clean tree under /test/ld.
  std::vector<std::string> stack = {"/local/domain"};
  while (!stack.empty()) {
    const std::string p = stack.back();
    stack.pop_back();
    const std::string q = "/test/ld" + p.substr(std::string("/local/domain").size());
    t.Write(q, *src.t.Read(p));
    t.SetPermissions(q, *src.t.GetPermissions(p));
    auto children = src.t.Directory(p);
    BOOST_REQUIRE(children.ok());
    for (const auto& c : *children) {
      std::string child = p;
      child += '/';
      child += c;
      stack.push_back(std::move(child));
    }
  }
  ValidatorOptions o;
  o.domain_root = "/test/ld";
  Validator v(BuiltinSchema(), o);
  auto fs = v.Check(t);
  BOOST_REQUIRE(fs.ok());
  BOOST_TEST(fs->empty(), Dump(*fs));
  t.Write("/test/ld/5/device/vnvram/0/junk", "1");  // schema-lint: allow
  fs = v.Check(t);
  BOOST_REQUIRE(fs.ok());
  BOOST_TEST(Has(*fs, "/test/ld/5/device/vnvram/0/junk", kRuleUnknownKey), Dump(*fs));
}

BOOST_AUTO_TEST_CASE(RunawayTreeIsCutOff) {
  Tree tree;
  for (int i = 0; i < 50; ++i) {
    tree.t.Write(DomainVnvramDir(kF) + "/multipath/x" + std::to_string(i), "");
  }
  ValidatorOptions o;
  o.max_nodes = 20;
  auto fs = tree.Check(o);
  bool cut = false;
  for (const auto& f : fs) cut = cut || f.rule == kRuleTooBig;
  BOOST_TEST(cut, Dump(fs));
}

BOOST_AUTO_TEST_CASE(CheckingOneDomainDoesNotJudgeItsPeers) {
  Tree tree;
  tree.t.Write(FrontendKey(kF, kDev, "junk"), "1");  // schema-lint: allow
  ValidatorOptions o;
  o.domains = {kF};
  auto fs = tree.Check(o);
  // The backend in domain 0 was not walked: no state-pair finding.
  BOOST_TEST(fs.size() == 1u, Dump(fs));
  BOOST_TEST(Has(fs, FrontendKey(kF, kDev, "junk"), kRuleUnknownKey), Dump(fs));
}

BOOST_AUTO_TEST_CASE(MissingDomainRootIsAnError) {
  MemoryTree t;
  Validator v(BuiltinSchema());
  BOOST_TEST(!v.Check(t).ok());
}

BOOST_AUTO_TEST_CASE(FindingsFormatAsTextAndJson) {
  std::vector<Finding> fs = {{"/a", "unknown-key", "not in the xenstore schema"}};
  BOOST_TEST(FormatFindingsText(fs) == "/a: unknown-key: not in the xenstore schema\n");
  BOOST_TEST(FormatFindingsJson(fs).find("\"rule\": \"unknown-key\"") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace vnvram::schema
