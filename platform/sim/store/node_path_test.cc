// Path rules of the sim xenstore, as C xenstored applies them.
#include "platform/sim/store/node_path.h"

#include <boost/test/unit_test.hpp>
#include <cerrno>

#include "platform/sim/store/node_perms.h"

namespace vnvram::sim {
namespace {

int Err(const Result<std::string>& r) {
  return r.ok() ? 0 : r.status().sys_errno();
}

BOOST_AUTO_TEST_SUITE(NodePathTest)

BOOST_AUTO_TEST_CASE(RelativePathIsPutUnderCallersHome) {
  BOOST_TEST(*CanonicalNodePath("device/vnvram/0", 5, false) == "/local/domain/5/device/vnvram/0");
  BOOST_TEST(*CanonicalNodePath("/abs", 5, false) == "/abs");
  BOOST_TEST(*CanonicalNodePath("/", 0, true) == "/");
}

BOOST_AUTO_TEST_CASE(MalformedPathsAreEinval) {
  for (const char* bad : {"/a/", "/a//b", "//", "/a b", "/a\n", "/ä", "@special", "", "/a/./b!"}) {
    BOOST_TEST(Err(CanonicalNodePath(bad, 1, false)) == EINVAL, bad);
  }
  BOOST_TEST(*CanonicalNodePath("/A-z_0@9", 1, false) == "/A-z_0@9");
}

BOOST_AUTO_TEST_CASE(LengthLimitsFollowXsWire) {
  const std::string abs_ok = "/" + std::string(kAbsPathMax - 1, 'a');
  BOOST_TEST(CanonicalNodePath(abs_ok, 0, true).ok());
  BOOST_TEST(Err(CanonicalNodePath(abs_ok + "a", 0, true)) == EINVAL);
  // Unprivileged: XENSTORE_REL_PATH_MAX counts from below the home.
  const std::string rel_ok(kRelPathMax, 'r');
  BOOST_TEST(CanonicalNodePath(rel_ok, 7, false).ok());
  BOOST_TEST(Err(CanonicalNodePath(rel_ok + "r", 7, false)) == EINVAL);
}

BOOST_AUTO_TEST_CASE(ParentBaseChildAndWithin) {
  BOOST_TEST(ParentPath("/a/b") == "/a");
  BOOST_TEST(ParentPath("/a") == "/");
  BOOST_TEST(BaseName("/a/b") == "b");
  BOOST_TEST(ChildPath("/", "x") == "/x");
  BOOST_TEST(ChildPath("/a", "x") == "/a/x");
  BOOST_TEST(PathIsWithin("/a/b", "/a"));
  BOOST_TEST(PathIsWithin("/a", "/a"));
  BOOST_TEST(!PathIsWithin("/ab", "/a"));
  BOOST_TEST(PathIsWithin("/anything", "/"));
  BOOST_TEST(!PathIsWithin("@introduceDomain", "/"));
  BOOST_TEST(PathIsWithin("@introduceDomain", "@introduceDomain"));
}

BOOST_AUTO_TEST_CASE(PermStringsParseStrictly) {
  BOOST_TEST((*ParseNodePerm("b12") == NodePerm{12, kAccessRead | kAccessWrite}));
  BOOST_TEST(FormatNodePerm({3, kAccessRead}) == "r3");
  for (const char* bad : {"", "x1", "r", "r-1", "r1x", "r99999", "R1"}) {
    BOOST_TEST(!ParseNodePerm(bad).ok(), bad);
  }
}

BOOST_AUTO_TEST_CASE(OwnerAndDom0GetEverythingOthersTheirEntry) {
  const NodePerms perms{{4, kAccessRead}, {6, kAccessWrite}};
  BOOST_TEST(AccessFor(4, false, perms) == (kAccessRead | kAccessWrite | kAccessOwner));
  BOOST_TEST(AccessFor(0, true, perms) == (kAccessRead | kAccessWrite | kAccessOwner));
  BOOST_TEST(AccessFor(6, false, perms) == kAccessWrite);
  BOOST_TEST(AccessFor(9, false, perms) == kAccessRead);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace vnvram::sim
