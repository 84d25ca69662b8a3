// Tests of the generated path builders and constants: each builds the path
// the schema's pattern describes.
#include <boost/test/unit_test.hpp>

#include "xenstore-schema/model.h"
#include "xenstore-schema/schema.h"

namespace vnvram::schema {
namespace {

Uuid TestVolume() {
  return *ParseUuid("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0");
}

std::string Pattern(std::string_view tree, const Bindings& b) {
  auto p = BuiltinSchema().FindTree(tree)->base.Format(b);
  return p.ok() ? *p : "(unbound)";
}

BOOST_AUTO_TEST_SUITE(PathBuilders)

BOOST_AUTO_TEST_CASE(DeviceDirectoriesFollowTheXenConvention) {
  BOOST_TEST(FrontendDir(5, 0) == "/local/domain/5/device/vnvram/0");
  BOOST_TEST(BackendDir(0, 5, 0) == "/local/domain/0/backend/vnvram/5/0");
  BOOST_TEST(FrontendRoot(5) == "/local/domain/5/device/vnvram");
  BOOST_TEST(BackendRoot(2) == "/local/domain/2/backend/vnvram");
  BOOST_TEST(BackendFrontendDir(2, 7) == "/local/domain/2/backend/vnvram/7");
  BOOST_TEST(DomainVnvramDir(3) == "/local/domain/3/vnvram");
}

BOOST_AUTO_TEST_CASE(BuildersAgreeWithSchemaPatterns) {
  const std::string vol = TestVolume().ToString();
  BOOST_TEST(FrontendDir(9, 51712) == Pattern("frontend", {{"F", "9"}, {"devid", "51712"}}));
  BOOST_TEST(BackendDir(1, 9, 3) == Pattern("backend", {{"B", "1"}, {"F", "9"}, {"devid", "3"}}));
  BOOST_TEST(MultipathDir(9, TestVolume()) == Pattern("multipath", {{"F", "9"}, {"vol", vol}}));
  BOOST_TEST(DaemonDir(1) == Pattern("daemon", {{"B", "1"}}));
  BOOST_TEST(ReplicationDir(1, TestVolume()) == Pattern("replication", {{"B", "1"}, {"vol", vol}}));
}

BOOST_AUTO_TEST_CASE(KeyBuildersAppendTheKey) {
  BOOST_TEST(BackendKey(0, 5, 1, be::kState) == "/local/domain/0/backend/vnvram/5/1/state");
  BOOST_TEST(FrontendKey(5, 1, fe::kEventChannel) ==
             "/local/domain/5/device/vnvram/1/event-channel");
  BOOST_TEST(FrontendKey(5, 1, fe::RingRefN(3)) == "/local/domain/5/device/vnvram/1/ring-ref3");
  BOOST_TEST(BackendKey(0, 5, 1, be::PageDirRef(12)) ==
             "/local/domain/0/backend/vnvram/5/1/page-dir-ref-12");
  BOOST_TEST(DaemonKey(0, daemon::PeerState("host-b")) ==
             "/local/domain/0/vnvram/daemon/peer/host-b/state");
  BOOST_TEST(repl::ReplicaProgress("h2") == "replica/h2/progress");
  BOOST_TEST(mp::kFailoverRequest == "failover/request");
  BOOST_TEST(be::kStatisticsDir == "statistics");
}

BOOST_AUTO_TEST_CASE(KeyConstantsAreKeysOfTheirTree) {
  const Schema& s = BuiltinSchema();
  const TreeSpec* fe = s.FindTree("frontend");
  const TreeSpec* be = s.FindTree("backend");
  for (std::string_view k : {fe::kBackend, fe::kBackendId, fe::kState, fe::kRingPageOrder,
                             fe::kRingRef, fe::kEventChannel, fe::kProtocol, fe::kVolume}) {
    BOOST_TEST(fe->FindKey(k) != nullptr, k);
  }
  for (std::string_view k :
       {be::kFrontend, be::kFrontendId, be::kOnline, be::kMaxRingPageOrder, be::kRegionSize,
        be::kRegionPages, be::kPageDirRefs, be::kHotplugStatus, be::kStatRequests}) {
    BOOST_TEST(be->FindKey(k) != nullptr, k);
  }
}

BOOST_AUTO_TEST_CASE(RangesAndEnumsAreExported) {
  BOOST_TEST(be::kMaxRingPageOrderMax == 4u);
  BOOST_TEST(fe::kRingPageOrderMax == be::kMaxRingPageOrderMax);
  BOOST_TEST(be::kRegionSizeMultipleOf == 4096u);
  BOOST_TEST(fe::kProtocolX86_64Abi == "x86_64-abi");
  BOOST_TEST(fe::kProtocolValues.size() == 3u);
  BOOST_TEST(be::kHotplugStatusConnected == "connected");
  BOOST_TEST(fe::kRingPageOrderDefault == "0");
}

BOOST_AUTO_TEST_CASE(BuiltPathsMatchTheirPatterns) {
  const Schema& s = BuiltinSchema();
  const TreeSpec* fe = s.FindTree("frontend");
  class Any final : public PlaceholderChecker {
   public:
    bool Accepts(std::string_view, std::string_view t) const override { return !t.empty(); }
  } any;
  Bindings b;
  BOOST_TEST(fe->base.Match(SplitPath(FrontendDir(4, 2)), any, &b));
  BOOST_TEST(b["F"] == "4");
  BOOST_TEST(b["devid"] == "2");
  Bindings kb;
  BOOST_TEST(fe->FindKey("ring-ref{i}")->pattern.Match(SplitPath(fe::RingRefN(7)), any, &kb));
  BOOST_TEST(kb["i"] == "7");
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace vnvram::schema
