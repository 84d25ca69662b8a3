// Unit tests of the sim xenstore engine, in-process.
#define BOOST_TEST_MODULE sim_store
#include "platform/sim/store/store.h"

#include <boost/test/unit_test.hpp>
#include <cerrno>

#include "platform/sim/store/node_path.h"

namespace vnvram::sim {
namespace {

int Err(const Status& s) {
  return s.sys_errno();
}
template <typename T>
int Err(const Result<T>& r) {
  return r.ok() ? 0 : r.status().sys_errno();
}

struct Fixture {
  Store store;
  ConnId dom0 = store.Connect(0);
  ConnId dom1 = store.Connect(1);
  ConnId dom2 = store.Connect(2);
  Fixture() {
    // The homes a toolstack would make: owned by each domain.
    BOOST_REQUIRE(store.Write(dom0, 0, "/local/domain/1", "").ok());
    BOOST_REQUIRE(store.SetPerms(dom0, 0, "/local/domain/1", {{1, kAccessNone}}).ok());
    BOOST_REQUIRE(store.Write(dom0, 0, "/local/domain/2", "").ok());
    BOOST_REQUIRE(store.SetPerms(dom0, 0, "/local/domain/2", {{2, kAccessNone}}).ok());
    store.DrainEvents();
  }
};

BOOST_FIXTURE_TEST_SUITE(StoreTest, Fixture)

BOOST_AUTO_TEST_CASE(WriteThenReadReturnsValueWithNuls) {
  const std::string value("a\0b", 3);
  BOOST_REQUIRE(store.Write(dom0, 0, "/x/y", value).ok());
  auto r = store.Read(dom0, 0, "/x/y");
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(*r == value);
  // The implicit parent exists with an empty value.
  BOOST_TEST(*store.Read(dom0, 0, "/x") == "");
}

BOOST_AUTO_TEST_CASE(ReadMissingNodeIsEnoent) {
  BOOST_TEST(Err(store.Read(dom0, 0, "/nope")) == ENOENT);
}

BOOST_AUTO_TEST_CASE(InvalidPathsAreEinval) {
  BOOST_TEST(Err(store.Write(dom0, 0, "/a//b", "")) == EINVAL);
  BOOST_TEST(Err(store.Write(dom0, 0, "/a/", "")) == EINVAL);
  BOOST_TEST(Err(store.Write(dom0, 0, "/a b", "")) == EINVAL);
  BOOST_TEST(Err(store.Write(dom0, 0, "@foo", "")) == EINVAL);
  BOOST_TEST(Err(store.Write(dom0, 0, "/" + std::string(kAbsPathMax, 'a'), "")) == EINVAL);
  // Below its home an unprivileged domain has XENSTORE_REL_PATH_MAX.
  BOOST_TEST(Err(store.Write(dom1, 0, std::string(kRelPathMax + 1, 'a'), "")) == EINVAL);
}

BOOST_AUTO_TEST_CASE(RelativePathResolvesUnderCallersHome) {
  BOOST_REQUIRE(store.Write(dom1, 0, "data/k", "v").ok());
  BOOST_TEST(*store.Read(dom0, 0, "/local/domain/1/data/k") == "v");
}

BOOST_AUTO_TEST_CASE(NewNodeInheritsParentPermsButCreatorOwnsIt) {
  BOOST_REQUIRE(
      store.SetPerms(dom0, 0, "/local/domain/1", {{1, kAccessNone}, {2, kAccessRead}}).ok());
  BOOST_REQUIRE(store.Write(dom1, 0, "child", "v").ok());
  auto p = store.GetPerms(dom0, 0, "/local/domain/1/child");
  BOOST_REQUIRE(p.ok());
  BOOST_TEST(p->size() == 2u);
  BOOST_TEST((*p)[0].domid == 1);
  BOOST_TEST((*p)[1].domid == 2);
  BOOST_TEST((*p)[1].access == kAccessRead);
  // Dom0 creating under a domain's node keeps the parent's owner.
  BOOST_REQUIRE(store.Write(dom0, 0, "/local/domain/1/by0", "v").ok());
  BOOST_TEST((*store.GetPerms(dom0, 0, "/local/domain/1/by0"))[0].domid == 1);
}

BOOST_AUTO_TEST_CASE(DomainCannotWriteAnotherDomainsNode) {
  BOOST_TEST(Err(store.Write(dom1, 0, "/local/domain/2/x", "v")) == EACCES);
  BOOST_REQUIRE(store.Write(dom2, 0, "x", "v").ok());
  BOOST_TEST(Err(store.Write(dom1, 0, "/local/domain/2/x", "v")) == EACCES);
  BOOST_TEST(Err(store.Read(dom1, 0, "/local/domain/2/x")) == EACCES);
}

BOOST_AUTO_TEST_CASE(MissingNodeUnderUnreadableParentIsEaccesNotEnoent) {
  BOOST_TEST(Err(store.Read(dom1, 0, "/local/domain/2/missing")) == EACCES);
  BOOST_TEST(Err(store.Read(dom2, 0, "/local/domain/2/missing")) == ENOENT);
}

BOOST_AUTO_TEST_CASE(ReadGrantAllowsReadButNotWrite) {
  BOOST_REQUIRE(store.Write(dom2, 0, "shared", "v").ok());
  BOOST_REQUIRE(store.SetPerms(dom2, 0, "shared", {{2, kAccessNone}, {1, kAccessRead}}).ok());
  BOOST_TEST(*store.Read(dom1, 0, "/local/domain/2/shared") == "v");
  BOOST_TEST(Err(store.Write(dom1, 0, "/local/domain/2/shared", "w")) == EACCES);
}

BOOST_AUTO_TEST_CASE(UnprivilegedDomainCannotChangeOwner) {
  BOOST_REQUIRE(store.Write(dom1, 0, "n", "v").ok());
  BOOST_TEST(Err(store.SetPerms(dom1, 0, "n", {{2, kAccessNone}})) == EPERM);
  BOOST_TEST(store.SetPerms(dom1, 0, "n", {{1, kAccessRead}}).ok());
  BOOST_TEST(store.SetPerms(dom0, 0, "/local/domain/1/n", {{2, kAccessNone}}).ok());
}

BOOST_AUTO_TEST_CASE(TooManyPermsIsEnospc) {
  BOOST_REQUIRE(store.Write(dom1, 0, "n", "v").ok());
  NodePerms perms{{1, kAccessNone}};
  for (DomId d = 2; d < 8; ++d) perms.push_back({d, kAccessRead});
  BOOST_TEST(Err(store.SetPerms(dom1, 0, "n", perms)) == ENOSPC);
  BOOST_TEST(store.SetPerms(dom0, 0, "/local/domain/1/n", perms).ok());
}

BOOST_AUTO_TEST_CASE(NodeQuotaIsEnospc) {
  Quotas q;
  q.nodes_per_domain = 5;
  Store small(q);
  ConnId d0 = small.Connect(0);
  ConnId d1 = small.Connect(1);
  BOOST_REQUIRE(small.Write(d0, 0, "/local/domain/1", "").ok());
  BOOST_REQUIRE(small.SetPerms(d0, 0, "/local/domain/1", {{1, kAccessNone}}).ok());
  // The home counts as one of domain 1's nodes.
  for (int i = 0; i < 4; ++i) BOOST_REQUIRE(small.Write(d1, 0, "k" + std::to_string(i), "v").ok());
  BOOST_TEST(Err(small.Write(d1, 0, "k4", "v")) == ENOSPC);
  BOOST_REQUIRE(small.Remove(d1, 0, "k0").ok());
  BOOST_TEST(small.Write(d1, 0, "k4", "v").ok());
}

BOOST_AUTO_TEST_CASE(EntrySizeQuotaIsEnospcForDomainsOnly) {
  BOOST_TEST(Err(store.Write(dom1, 0, "big", std::string(2048, 'x'))) == ENOSPC);
  BOOST_TEST(store.Write(dom1, 0, "ok", std::string(1000, 'x')).ok());
  BOOST_TEST(store.Write(dom0, 0, "/big", std::string(4000, 'x')).ok());
}

BOOST_AUTO_TEST_CASE(RemoveDeletesSubtreeAndMissingChildIsOk) {
  BOOST_REQUIRE(store.Write(dom0, 0, "/a/b/c", "v").ok());
  BOOST_REQUIRE(store.Remove(dom0, 0, "/a").ok());
  BOOST_TEST(Err(store.Read(dom0, 0, "/a/b/c")) == ENOENT);
  BOOST_TEST(store.Remove(dom0, 0, "/a").ok());  // parent "/" exists
  BOOST_TEST(Err(store.Remove(dom0, 0, "/a/b")) == ENOENT);
  auto root = store.Directory(dom0, 0, "/");
  BOOST_REQUIRE(root.ok());
  BOOST_TEST(std::count(root->children.begin(), root->children.end(), "a") == 0);
}

BOOST_AUTO_TEST_CASE(MkdirExistingIsOk) {
  BOOST_REQUIRE(store.Mkdir(dom0, 0, "/m").ok());
  BOOST_TEST(store.Mkdir(dom0, 0, "/m").ok());
  BOOST_TEST(store.Directory(dom0, 0, "/m")->children.empty());
}

BOOST_AUTO_TEST_CASE(WatchFiresInitialEventThenOnSubtreeChange) {
  BOOST_REQUIRE(store.Watch(dom0, "/w", "tok").ok());
  auto ev = store.DrainEvents();
  BOOST_REQUIRE(ev.size() == 1u);
  BOOST_TEST(ev[0].path == "/w");
  BOOST_TEST(ev[0].token == "tok");
  BOOST_REQUIRE(store.Write(dom0, 0, "/w/x/y", "v").ok());
  ev = store.DrainEvents();
  BOOST_REQUIRE(ev.size() == 1u);
  BOOST_TEST(ev[0].path == "/w/x/y");
  BOOST_REQUIRE(store.Write(dom0, 0, "/wother", "v").ok());
  BOOST_TEST(store.DrainEvents().empty());
}

BOOST_AUTO_TEST_CASE(DuplicateWatchIsEexistAndUnknownUnwatchIsEnoent) {
  BOOST_REQUIRE(store.Watch(dom0, "/w", "t").ok());
  BOOST_TEST(Err(store.Watch(dom0, "/w", "t")) == EEXIST);
  BOOST_TEST(Err(store.Unwatch(dom0, "/w", "other")) == ENOENT);
  BOOST_TEST(store.Unwatch(dom0, "/w", "t").ok());
}

BOOST_AUTO_TEST_CASE(RelativeWatchReportsRelativePaths) {
  BOOST_REQUIRE(store.Watch(dom1, "data", "t").ok());
  auto ev = store.DrainEvents();
  BOOST_REQUIRE(ev.size() == 1u);
  BOOST_TEST(ev[0].path == "data");
  BOOST_REQUIRE(store.Write(dom1, 0, "data/k", "v").ok());
  ev = store.DrainEvents();
  BOOST_REQUIRE(ev.size() == 1u);
  BOOST_TEST(ev[0].path == "data/k");
}

BOOST_AUTO_TEST_CASE(WatchDoesNotFireForNodeTheWatcherCannotRead) {
  BOOST_REQUIRE(store.Watch(dom1, "/local/domain/2", "t").ok());
  store.DrainEvents();
  BOOST_REQUIRE(store.Write(dom2, 0, "secret", "v").ok());
  BOOST_TEST(store.DrainEvents().empty());
  BOOST_REQUIRE(store.SetPerms(dom2, 0, "secret", {{2, kAccessNone}, {1, kAccessRead}}).ok());
  auto ev = store.DrainEvents();
  BOOST_REQUIRE(ev.size() == 1u);
  BOOST_TEST(ev[0].conn == dom1);
  BOOST_TEST(ev[0].path == "/local/domain/2/secret");
}

BOOST_AUTO_TEST_CASE(RemoveFiresForNodeAndForWatchedDescendants) {
  BOOST_REQUIRE(store.Write(dom0, 0, "/r/a/b", "v").ok());
  BOOST_REQUIRE(store.Watch(dom0, "/r", "top").ok());
  BOOST_REQUIRE(store.Watch(dom0, "/r/a/b", "deep").ok());
  store.DrainEvents();
  BOOST_REQUIRE(store.Remove(dom0, 0, "/r/a").ok());
  auto ev = store.DrainEvents();
  std::vector<std::string> got;
  got.reserve(ev.size());
  for (const auto& e : ev) got.push_back(e.token + ":" + e.path);
  BOOST_TEST(std::count(got.begin(), got.end(), "top:/r/a") == 1);
  BOOST_TEST(std::count(got.begin(), got.end(), "deep:/r/a/b") == 1);
}

BOOST_AUTO_TEST_CASE(WatchQuotaIsE2big) {
  for (size_t i = 0; i < store.quotas().watches_per_domain; ++i) {
    BOOST_REQUIRE(store.Watch(dom1, "w", "t" + std::to_string(i)).ok());
  }
  BOOST_TEST(Err(store.Watch(dom1, "w", "one-more")) == E2BIG);
  BOOST_TEST(store.Watch(dom0, "/w", "dom0-unlimited").ok());
}

BOOST_AUTO_TEST_CASE(IntroduceAndReleaseFireSpecialWatches) {
  BOOST_REQUIRE(store.Watch(dom0, "@introduceDomain", "i").ok());
  BOOST_REQUIRE(store.Watch(dom0, "@releaseDomain", "r").ok());
  BOOST_REQUIRE(store.Watch(dom0, "/", "root").ok());
  store.DrainEvents();
  BOOST_REQUIRE(store.Introduce(dom0, 7).ok());
  auto ev = store.DrainEvents();
  BOOST_REQUIRE(ev.size() == 1u);
  BOOST_TEST(ev[0].path == "@introduceDomain");
  BOOST_TEST(*store.IsIntroduced(dom0, 7));
  BOOST_REQUIRE(store.Release(dom0, 7).ok());
  ev = store.DrainEvents();
  BOOST_REQUIRE(ev.size() == 1u);
  BOOST_TEST(ev[0].path == "@releaseDomain");
  BOOST_TEST(!*store.IsIntroduced(dom0, 7));
  BOOST_TEST(Err(store.Release(dom0, 7)) == ENOENT);
  BOOST_TEST(Err(store.Introduce(dom1, 8)) == EACCES);
}

BOOST_AUTO_TEST_CASE(TransactionIsIsolatedUntilCommit) {
  auto tx = store.TransactionStart(dom0, 0);
  BOOST_REQUIRE(tx.ok());
  BOOST_REQUIRE(store.Write(dom0, *tx, "/t/k", "v").ok());
  BOOST_TEST(*store.Read(dom0, *tx, "/t/k") == "v");
  BOOST_TEST(Err(store.Read(dom0, 0, "/t/k")) == ENOENT);
  BOOST_REQUIRE(store.TransactionEnd(dom0, *tx, true).ok());
  BOOST_TEST(*store.Read(dom0, 0, "/t/k") == "v");
}

BOOST_AUTO_TEST_CASE(AbortedTransactionLeavesNoTrace) {
  auto tx = store.TransactionStart(dom0, 0);
  BOOST_REQUIRE(store.Write(dom0, *tx, "/t/k", "v").ok());
  BOOST_REQUIRE(store.TransactionEnd(dom0, *tx, false).ok());
  BOOST_TEST(Err(store.Read(dom0, 0, "/t/k")) == ENOENT);
  BOOST_TEST(Err(store.TransactionEnd(dom0, *tx, true)) == ENOENT);
}

BOOST_AUTO_TEST_CASE(TransactionConflictOnReadNodeReturnsEagain) {
  BOOST_REQUIRE(store.Write(dom0, 0, "/c/a", "1").ok());
  auto tx = store.TransactionStart(dom0, 0);
  BOOST_REQUIRE(store.Read(dom0, *tx, "/c/a").ok());
  BOOST_REQUIRE(store.Write(dom0, *tx, "/c/b", "x").ok());
  BOOST_REQUIRE(store.Write(dom0, 0, "/c/a", "2").ok());
  BOOST_TEST(Err(store.TransactionEnd(dom0, *tx, true)) == EAGAIN);
  BOOST_TEST(Err(store.Read(dom0, 0, "/c/b")) == ENOENT);
}

BOOST_AUTO_TEST_CASE(TransactionWithoutConflictCommitsDespiteUnrelatedWrites) {
  BOOST_REQUIRE(store.Write(dom0, 0, "/c/a", "1").ok());
  BOOST_REQUIRE(store.Write(dom0, 0, "/d/a", "1").ok());
  auto tx = store.TransactionStart(dom0, 0);
  BOOST_REQUIRE(store.Write(dom0, *tx, "/c/a", "tx").ok());
  BOOST_REQUIRE(store.Write(dom0, 0, "/d/a", "2").ok());
  BOOST_TEST(store.TransactionEnd(dom0, *tx, true).ok());
  BOOST_TEST(*store.Read(dom0, 0, "/c/a") == "tx");
}

BOOST_AUTO_TEST_CASE(TransactionWatchesFireOnlyAtCommit) {
  BOOST_REQUIRE(store.Watch(dom0, "/tw", "t").ok());
  store.DrainEvents();
  auto tx = store.TransactionStart(dom0, 0);
  BOOST_REQUIRE(store.Write(dom0, *tx, "/tw/k", "v").ok());
  BOOST_TEST(store.DrainEvents().empty());
  BOOST_REQUIRE(store.TransactionEnd(dom0, *tx, true).ok());
  auto ev = store.DrainEvents();
  BOOST_REQUIRE(ev.size() == 1u);
  BOOST_TEST(ev[0].path == "/tw/k");
}

BOOST_AUTO_TEST_CASE(TransactionQuotaIsEnospcAndNestedStartIsEbusy) {
  for (size_t i = 0; i < store.quotas().transactions_per_conn; ++i) {
    BOOST_REQUIRE(store.TransactionStart(dom1, 0).ok());
  }
  BOOST_TEST(Err(store.TransactionStart(dom1, 0)) == ENOSPC);
  BOOST_TEST(Err(store.TransactionStart(dom0, 5)) == EBUSY);
  BOOST_TEST(Err(store.Read(dom0, 12345, "/")) == ENOENT);
}

BOOST_AUTO_TEST_CASE(DirectoryGenerationChangesWithChildren) {
  BOOST_REQUIRE(store.Write(dom0, 0, "/g/a", "").ok());
  const uint64_t g1 = store.Directory(dom0, 0, "/g")->generation;
  BOOST_REQUIRE(store.Write(dom0, 0, "/g/b", "").ok());
  auto l = store.Directory(dom0, 0, "/g");
  BOOST_TEST(l->generation != g1);
  BOOST_TEST(l->children == (std::vector<std::string>{"a", "b"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(DisconnectDropsWatches) {
  ConnId c = store.Connect(0);
  BOOST_REQUIRE(store.Watch(c, "/x", "t").ok());
  store.Disconnect(c);
  BOOST_TEST(store.DrainEvents().empty());
  BOOST_REQUIRE(store.Write(dom0, 0, "/x", "v").ok());
  BOOST_TEST(store.DrainEvents().empty());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace vnvram::sim
