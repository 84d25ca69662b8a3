// vnvram-xenstored as a real child process, driven through the real
// libxenstore (platform/xen's OpenXenStoreAt) and a raw xs_wire.h client.
#define BOOST_TEST_MODULE sim_xenstored_libxenstore
#include <poll.h>

#include <boost/test/unit_test.hpp>
#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <ostream>
#include <set>

#include "platform/sim/store/xen_xs_wire.h"
#include "platform/sim/xenstored/testing/raw_xs_client.h"
#include "platform/sim/xenstored/testing/xenstored_process.h"
#include "platform/xen/xen_xenstore.h"

namespace vnvram {
// Boost.Test prints codes in failure messages.
std::ostream& operator<<(std::ostream& os, Code c) {
  return os << CodeName(c);
}
}  // namespace vnvram

namespace vnvram::sim {
namespace {

using platform::Perm;
using platform::PermEntry;
using platform::WatchEvent;
using platform::XenStore;
using testing::RawXsClient;
using testing::XenstoredProcess;
using testing::XsArgs;

struct Daemon {
  std::unique_ptr<XenstoredProcess> proc;
  Daemon() {
    auto p = XenstoredProcess::Start({1, 2});
    BOOST_REQUIRE_MESSAGE(p.ok(), p.status().ToString());
    proc = std::move(*p);
  }
  ~Daemon() {
    // Every test must leave the daemon alive and stopping cleanly.
    BOOST_CHECK_MESSAGE(proc->Alive(), "daemon died; log:\n" + proc->Log());
    auto st = proc->Stop();
    BOOST_CHECK(st.ok() && WIFEXITED(*st) && WEXITSTATUS(*st) == 0);
    BOOST_CHECK(!std::filesystem::exists(proc->dom0_socket()));
  }
  std::unique_ptr<XenStore> Open(const std::string& socket) {
    auto xs = xen::OpenXenStoreAt(socket);
    BOOST_REQUIRE_MESSAGE(xs.ok(), xs.status().ToString());
    return std::move(*xs);
  }
  std::unique_ptr<XenStore> Dom0() { return Open(proc->dom0_socket()); }
  std::unique_ptr<XenStore> Dom(DomId d) { return Open(proc->domain_socket(d)); }
  std::unique_ptr<RawXsClient> Raw(const std::string& socket) {
    auto c = RawXsClient::Connect(socket);
    BOOST_REQUIRE_MESSAGE(c.ok(), c.status().ToString());
    return std::move(*c);
  }
};

// The next watch event, waiting on WatchFd() with a deadline.
std::optional<WatchEvent> NextEvent(XenStore& xs, int timeout_ms = 5000) {
  for (;;) {
    auto ev = xs.ReadWatch();
    BOOST_REQUIRE_MESSAGE(ev.ok(), ev.status().ToString());
    if (ev->has_value()) return *ev;
    pollfd p{xs.WatchFd(), POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return std::nullopt;
  }
}

// No event arrives: proved by a round trip through a sentinel watch that
// the daemon must deliver after anything queued before it.
void ExpectNoEventBefore(XenStore& xs, const std::string& sentinel_path) {
  BOOST_REQUIRE(xs.Watch(sentinel_path, "sentinel").ok());
  auto ev = NextEvent(xs);
  BOOST_REQUIRE(ev.has_value());
  BOOST_TEST(ev->token == "sentinel");
  BOOST_TEST(ev->path == sentinel_path);
  BOOST_REQUIRE(xs.Unwatch(sentinel_path, "sentinel").ok());
}

int Errno(const Status& s) {
  return s.sys_errno();
}
template <typename T>
int Errno(const Result<T>& r) {
  return r.ok() ? 0 : r.status().sys_errno();
}

BOOST_FIXTURE_TEST_SUITE(XenstoredLibxenstore, Daemon)

BOOST_AUTO_TEST_CASE(ReadWriteMkdirDirectoryRemoveRoundTrip) {
  auto xs = Dom0();
  BOOST_REQUIRE(xs->Write(platform::kNoTx, "/vn/a", "alpha").ok());
  BOOST_REQUIRE(xs->Mkdir(platform::kNoTx, "/vn/dir").ok());
  BOOST_TEST(*xs->Read(platform::kNoTx, "/vn/a") == "alpha");
  BOOST_TEST(*xs->Read(platform::kNoTx, "/vn/dir") == "");
  auto dir = xs->Directory(platform::kNoTx, "/vn");
  BOOST_REQUIRE(dir.ok());
  BOOST_TEST(std::set<std::string>(dir->begin(), dir->end()) ==
             (std::set<std::string>{"a", "dir"}));
  BOOST_REQUIRE(xs->Remove(platform::kNoTx, "/vn").ok());
  BOOST_TEST(xs->Read(platform::kNoTx, "/vn/a").status().code() == Code::kNotFound);
  BOOST_TEST(xs->Remove(platform::kNoTx, "/vn").ok());  // missing node: OK
}

BOOST_AUTO_TEST_CASE(BinaryValueWithNulsRoundTrips) {
  auto xs = Dom0();
  const std::string v("\0\x01\xff\0z", 5);
  BOOST_REQUIRE(xs->Write(platform::kNoTx, "/bin", v).ok());
  BOOST_TEST(*xs->Read(platform::kNoTx, "/bin") == v);
}

BOOST_AUTO_TEST_CASE(DirectoryLargerThanOnePayloadUsesDirectoryPart) {
  auto xs = Dom0();
  std::set<std::string> want;
  for (int i = 0; i < 250; ++i) {
    const std::string name = "child-with-a-long-name-" + std::to_string(i);
    want.insert(name);
    BOOST_REQUIRE(xs->Mkdir(platform::kNoTx, "/big/" + name).ok());
  }
  auto dir = xs->Directory(platform::kNoTx, "/big");
  BOOST_REQUIRE_MESSAGE(dir.ok(), dir.status().ToString());
  BOOST_TEST(dir->size() == want.size());
  BOOST_TEST((std::set<std::string>(dir->begin(), dir->end()) == want));
}

BOOST_AUTO_TEST_CASE(PermissionsSetAndGet) {
  auto xs = Dom0();
  BOOST_REQUIRE(xs->Write(platform::kNoTx, "/p", "v").ok());
  const std::vector<PermEntry> perms{{0, Perm::kNone}, {1, Perm::kRead}, {2, Perm::kBoth}};
  BOOST_REQUIRE(xs->SetPermissions(platform::kNoTx, "/p", perms).ok());
  auto got = xs->GetPermissions(platform::kNoTx, "/p");
  BOOST_REQUIRE(got.ok());
  BOOST_TEST((*got == perms));
}

BOOST_AUTO_TEST_CASE(DomainPathsAndRelativePaths) {
  auto xs = Dom0();
  BOOST_TEST(*xs->GetDomainPath(7) == "/local/domain/7");
  auto d1 = Dom(1);
  BOOST_REQUIRE(d1->Write(platform::kNoTx, "data/k", "v1").ok());
  BOOST_TEST(*xs->Read(platform::kNoTx, "/local/domain/1/data/k") == "v1");
  BOOST_TEST(*d1->Read(platform::kNoTx, "/local/domain/1/data/k") == "v1");
}

BOOST_AUTO_TEST_CASE(DomainSocketCannotWriteAnotherDomainsNodes) {
  auto d1 = Dom(1);
  auto d2 = Dom(2);
  BOOST_REQUIRE(d2->Write(platform::kNoTx, "mine", "2").ok());
  BOOST_TEST(d1->Write(platform::kNoTx, "/local/domain/2/mine", "x").code() ==
             Code::kPermissionDenied);
  BOOST_TEST(d1->Write(platform::kNoTx, "/local/domain/2/new", "x").code() ==
             Code::kPermissionDenied);
  BOOST_TEST(d1->Read(platform::kNoTx, "/local/domain/2/mine").status().code() ==
             Code::kPermissionDenied);
  BOOST_TEST(d1->Write(platform::kNoTx, "/outside", "x").code() == Code::kPermissionDenied);
  // Granting read lets domain 1 read, still not write.
  const std::vector<PermEntry> perms{{2, Perm::kNone}, {1, Perm::kRead}};
  BOOST_REQUIRE(d2->SetPermissions(platform::kNoTx, "mine", perms).ok());
  BOOST_TEST(*d1->Read(platform::kNoTx, "/local/domain/2/mine") == "2");
  BOOST_TEST(d1->Write(platform::kNoTx, "/local/domain/2/mine", "x").code() ==
             Code::kPermissionDenied);
  // A domain may not give its node away.
  const std::vector<PermEntry> give{{1, Perm::kNone}};
  BOOST_TEST(Errno(d2->SetPermissions(platform::kNoTx, "mine", give)) == EPERM);
}

BOOST_AUTO_TEST_CASE(IsDomainIntroducedNeedsDom0) {
  auto xs = Dom0();
  BOOST_TEST(*xs->IsDomainIntroduced(1));
  BOOST_TEST(!*xs->IsDomainIntroduced(9));
  auto d1 = Dom(1);
  BOOST_TEST(d1->IsDomainIntroduced(2).status().code() == Code::kPermissionDenied);
}

BOOST_AUTO_TEST_CASE(WatchFiresInitialEventThenOnChange) {
  auto xs = Dom0();
  BOOST_REQUIRE(xs->Watch("/w", "tok").ok());
  auto ev = NextEvent(*xs);
  BOOST_REQUIRE(ev.has_value());
  BOOST_TEST(ev->path == "/w");
  BOOST_TEST(ev->token == "tok");
  auto writer = Dom0();
  BOOST_REQUIRE(writer->Write(platform::kNoTx, "/w/x", "1").ok());
  ev = NextEvent(*xs);
  BOOST_REQUIRE(ev.has_value());
  BOOST_TEST(ev->path == "/w/x");
  BOOST_REQUIRE(writer->Remove(platform::kNoTx, "/w").ok());
  ev = NextEvent(*xs);
  BOOST_REQUIRE(ev.has_value());
  BOOST_TEST(ev->path == "/w");
  BOOST_REQUIRE(xs->Unwatch("/w", "tok").ok());
  BOOST_REQUIRE(writer->Write(platform::kNoTx, "/w/y", "1").ok());
  ExpectNoEventBefore(*xs, "/sentinel");
}

BOOST_AUTO_TEST_CASE(WatchOnUnreadableNodeDoesNotFireForDomain) {
  auto d1 = Dom(1);
  auto d2 = Dom(2);
  BOOST_REQUIRE(d1->Watch("/local/domain/2", "spy").ok());
  BOOST_REQUIRE(NextEvent(*d1).has_value());  // initial event
  BOOST_REQUIRE(d2->Write(platform::kNoTx, "secret", "s").ok());
  ExpectNoEventBefore(*d1, "/local/domain/1");
}

BOOST_AUTO_TEST_CASE(IntroduceAndReleaseFireSpecialWatches) {
  auto xs = Dom0();
  BOOST_REQUIRE(xs->Watch(platform::kIntroduceDomainWatch, "intro").ok());
  BOOST_REQUIRE(xs->Watch(platform::kReleaseDomainWatch, "rel").ok());
  BOOST_REQUIRE(NextEvent(*xs)->token == "intro");
  BOOST_REQUIRE(NextEvent(*xs)->token == "rel");

  auto raw = Raw(proc->dom0_socket());
  auto r = raw->Call(XS_INTRODUCE, XsArgs({"5", "12345", "3"}));
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(r->hdr.type == XS_INTRODUCE);
  auto ev = NextEvent(*xs);
  BOOST_REQUIRE(ev.has_value());
  BOOST_TEST(ev->path == "@introduceDomain");
  BOOST_TEST(ev->token == "intro");
  BOOST_TEST(*xs->IsDomainIntroduced(5));
  BOOST_REQUIRE(std::filesystem::exists(proc->domain_socket(5)));
  {
    auto d5 = Dom(5);
    BOOST_REQUIRE(d5->Write(platform::kNoTx, "hello", "5").ok());
  }
  r = raw->Call(XS_RELEASE, XsArgs({"5"}));
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(r->hdr.type == XS_RELEASE);
  ev = NextEvent(*xs);
  BOOST_REQUIRE(ev.has_value());
  BOOST_TEST(ev->path == "@releaseDomain");
  BOOST_TEST(!*xs->IsDomainIntroduced(5));
  BOOST_TEST(!std::filesystem::exists(proc->domain_socket(5)));
  // Only dom0 may introduce.
  auto raw1 = Raw(proc->domain_socket(1));
  r = raw1->Call(XS_INTRODUCE, XsArgs({"6", "1", "1"}));
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(r->hdr.type == XS_ERROR);
  BOOST_TEST(r->payload == XsArgs({"EACCES"}));
}

BOOST_AUTO_TEST_CASE(TransactionCommitsAtomically) {
  auto xs = Dom0();
  auto other = Dom0();
  auto tx = xs->TransactionStart();
  BOOST_REQUIRE(tx.ok());
  BOOST_REQUIRE(xs->Write(*tx, "/t/a", "1").ok());
  BOOST_REQUIRE(xs->Write(*tx, "/t/b", "2").ok());
  BOOST_TEST(other->Read(platform::kNoTx, "/t/a").status().code() == Code::kNotFound);
  BOOST_REQUIRE(xs->TransactionEnd(*tx, true).ok());
  BOOST_TEST(*other->Read(platform::kNoTx, "/t/b") == "2");
}

BOOST_AUTO_TEST_CASE(TransactionConflictReturnsAborted) {
  auto xs = Dom0();
  auto other = Dom0();
  BOOST_REQUIRE(xs->Write(platform::kNoTx, "/c/k", "0").ok());
  auto tx = xs->TransactionStart();
  BOOST_REQUIRE(tx.ok());
  BOOST_REQUIRE(xs->Read(*tx, "/c/k").ok());
  BOOST_REQUIRE(xs->Write(*tx, "/c/out", "x").ok());
  BOOST_REQUIRE(other->Write(platform::kNoTx, "/c/k", "1").ok());
  const Status end = xs->TransactionEnd(*tx, true);
  BOOST_TEST(end.code() == Code::kAborted);
  BOOST_TEST(end.sys_errno() == EAGAIN);
  BOOST_TEST(xs->Read(platform::kNoTx, "/c/out").status().code() == Code::kNotFound);

  // RunTransaction retries until the body sees a stable tree.
  int attempts = 0;
  const Status s = platform::RunTransaction(*xs, [&](platform::TxId t) -> Status {
    ++attempts;
    auto v = xs->Read(t, "/c/k");
    if (!v.ok()) return v.status();
    if (attempts == 1) VNVRAM_RETURN_IF_ERROR(other->Write(platform::kNoTx, "/c/k", "2"));
    return xs->Write(t, "/c/copy", *v);
  });
  BOOST_TEST(s.ok());
  BOOST_TEST(attempts == 2);
  BOOST_TEST(*xs->Read(platform::kNoTx, "/c/copy") == "2");
}

BOOST_AUTO_TEST_CASE(TransactionQuotaAndUnknownTransaction) {
  auto d1 = Dom(1);
  for (int i = 0; i < 10; ++i) BOOST_REQUIRE(d1->TransactionStart().ok());
  BOOST_TEST(Errno(d1->TransactionStart()) == ENOSPC);
  auto xs = Dom0();
  BOOST_TEST(Errno(xs->Read(4242, "/")) == ENOENT);
  BOOST_TEST(Errno(xs->TransactionEnd(4242, true)) == ENOENT);
}

BOOST_AUTO_TEST_CASE(NodeQuotaIsEnospc) {
  auto d1 = Dom(1);
  // Domain 1 owns its home; spread nodes over groups of 40 so that no
  // parent's child list reaches the entry size quota first.
  size_t owned = 1;
  for (int i = 0; i < 2000; ++i) {
    const size_t new_nodes = i % 40 == 0 ? 2 : 1;
    const Status s =
        d1->Write(platform::kNoTx, "q" + std::to_string(i / 40) + "/" + std::to_string(i % 40), "");
    if (!s.ok()) {
      BOOST_TEST(Errno(s) == ENOSPC);
      BOOST_TEST(owned + new_nodes > 1000u);
      BOOST_TEST(owned <= 1000u);
      // Removing makes room again.
      BOOST_REQUIRE(d1->Remove(platform::kNoTx, "q0").ok());
      BOOST_TEST(d1->Write(platform::kNoTx, "again", "").ok());
      return;
    }
    owned += new_nodes;
  }
  BOOST_FAIL("node quota never hit");
}

BOOST_AUTO_TEST_CASE(WatchQuotaIsE2big) {
  auto d1 = Dom(1);
  for (int i = 0; i < 128; ++i) {
    BOOST_REQUIRE(d1->Watch("w", "t" + std::to_string(i)).ok());
  }
  BOOST_TEST(Errno(d1->Watch("w", "too-many")) == E2BIG);
}

BOOST_AUTO_TEST_CASE(EntrySizeAndPermissionCountQuotasAreEnospc) {
  auto d1 = Dom(1);
  BOOST_TEST(Errno(d1->Write(platform::kNoTx, "big", std::string(2100, 'x'))) == ENOSPC);
  BOOST_REQUIRE(d1->Write(platform::kNoTx, "p", "v").ok());
  std::vector<PermEntry> perms{{1, Perm::kNone}};
  for (DomId d = 2; d <= 6; ++d) perms.push_back({d, Perm::kRead});
  BOOST_TEST(Errno(d1->SetPermissions(platform::kNoTx, "p", perms)) == ENOSPC);
  // Dom0 is not bound by the quotas.
  auto xs = Dom0();
  BOOST_TEST(xs->Write(platform::kNoTx, "/big", std::string(4000, 'x')).ok());
}

BOOST_AUTO_TEST_CASE(OversizePayloadIsRejected) {
  auto xs = Dom0();
  // libxenstore refuses to send it: E2BIG.
  BOOST_TEST(Errno(xs->Write(platform::kNoTx, "/o", std::string(5000, 'x'))) == E2BIG);
  // A raw client announcing it is cut off before the daemon reads a byte
  // more; the libxenstore connection is unaffected.
  auto raw = Raw(proc->dom0_socket());
  BOOST_REQUIRE(raw->SendBytes(EncodeXsMessage(XsHeader{XS_WRITE, 1, 0, 0}, "")
                                   .replace(12, 4, std::string("\x00\x00\x01\x00", 4)))
                    .ok());
  BOOST_TEST(raw->ClosedByPeer());
  BOOST_TEST(xs->Write(platform::kNoTx, "/o", "still fine").ok());
}

BOOST_AUTO_TEST_CASE(GarbageFramesDisconnectOnlyThatClient) {
  auto xs = Dom0();
  BOOST_REQUIRE(xs->Watch("/g", "g").ok());
  BOOST_REQUIRE(NextEvent(*xs).has_value());
  {
    auto raw = Raw(proc->dom0_socket());
    BOOST_REQUIRE(raw->Send(999, "junk").ok());  // unknown type
    BOOST_TEST(raw->ClosedByPeer());
  }
  {
    auto raw = Raw(proc->dom0_socket());
    BOOST_REQUIRE(raw->Send(XS_INVALID, "").ok());
    BOOST_TEST(raw->ClosedByPeer());
  }
  {
    // Half a header then hang up.
    auto raw = Raw(proc->dom0_socket());
    BOOST_REQUIRE(raw->SendBytes(std::string("\x02\x00\x00", 3)).ok());
  }
  {
    // Deterministic pseudo-random frames of every known type: each gets a
    // reply or a disconnect, never a crash.
    uint32_t seed = 12345;
    auto next = [&seed] {
      seed = seed * 1103515245u + 12345u;
      return seed >> 8;
    };
    for (int round = 0; round < 200; ++round) {
      auto raw = Raw(proc->domain_socket(1 + round % 2));
      const uint32_t type = next() % XS_TYPE_COUNT;
      std::string payload(next() % 64, '\0');
      for (auto& ch : payload) {
        const uint32_t r = next() % 8;
        ch = r == 0 ? '\0' : r == 1 ? '/' : static_cast<char>('a' + next() % 26);
      }
      BOOST_REQUIRE(raw->Send(type, payload, next() % 3).ok());
      auto m = raw->Receive();
      BOOST_TEST((m.ok() || m.status().code() == Code::kUnavailable), m.status().ToString());
    }
  }
  // Everybody else carries on, watches included.
  auto writer = Dom0();
  BOOST_REQUIRE(writer->Write(platform::kNoTx, "/g/after", "1").ok());
  auto ev = NextEvent(*xs);
  BOOST_REQUIRE(ev.has_value());
  BOOST_TEST(ev->path == "/g/after");
}

BOOST_AUTO_TEST_CASE(MalformedArgumentsGetEinvalAndUnknownOpsEnosys) {
  auto raw = Raw(proc->dom0_socket());
  auto r = raw->Call(XS_READ, "no-nul");
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(r->hdr.type == XS_ERROR);
  BOOST_TEST(r->payload == XsArgs({"EINVAL"}));
  BOOST_TEST(r->hdr.req_id == 7u);
  r = raw->Call(XS_READ, XsArgs({"/missing"}));
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(r->payload == XsArgs({"ENOENT"}));
  r = raw->Call(XS_SET_TARGET, XsArgs({"1", "2"}));
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(r->payload == XsArgs({"ENOSYS"}));
  r = raw->Call(XS_TRANSACTION_END, XsArgs({"X"}), 0);
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(r->payload == XsArgs({"EINVAL"}));
}

BOOST_AUTO_TEST_CASE(WatchAckPrecedesInitialEventOnTheWire) {
  auto raw = Raw(proc->dom0_socket());
  BOOST_REQUIRE(raw->Send(XS_WATCH, XsArgs({"/x", "t"})).ok());
  auto ack = raw->Receive();
  BOOST_REQUIRE(ack.ok());
  BOOST_TEST(ack->hdr.type == XS_WATCH);
  BOOST_TEST(ack->payload == XsArgs({"OK"}));
  auto ev = raw->Receive();
  BOOST_REQUIRE(ev.ok());
  BOOST_TEST(ev->hdr.type == XS_WATCH_EVENT);
  BOOST_TEST(ev->payload == XsArgs({"/x", "t"}));
}

BOOST_AUTO_TEST_CASE(ResetWatchesDropsWatches) {
  auto raw = Raw(proc->dom0_socket());
  auto r = raw->Call(XS_WATCH, XsArgs({"/rw", "t"}));
  BOOST_REQUIRE(r.ok());
  BOOST_REQUIRE(raw->Receive()->hdr.type == XS_WATCH_EVENT);
  r = raw->Call(XS_RESET_WATCHES, "");
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(r->hdr.type == XS_RESET_WATCHES);
  r = raw->Call(XS_WRITE, XsArgs({"/rw/k"}) + "v");
  BOOST_REQUIRE(r.ok());
  // The next message is the reply to this read, not a watch event.
  r = raw->Call(XS_WATCH, XsArgs({"/other", "o"}));
  BOOST_REQUIRE(r.ok());
  auto ev = raw->Receive();
  BOOST_REQUIRE(ev.ok());
  BOOST_TEST(ev->payload == XsArgs({"/other", "o"}));
}

BOOST_AUTO_TEST_CASE(SecondDaemonDoesNotStealLiveSockets) {
  auto second = testing::RunProgram(
      {std::string(VNVRAM_BIN_DIR) + "/vnvram-xenstored", "--socket-dir", proc->socket_dir()}, {});
  BOOST_REQUIRE(second.ok());
  BOOST_TEST(second->exit_code == 1);
  BOOST_TEST(second->out.find("another running xenstored") != std::string::npos, second->out);
  auto xs = Dom0();
  BOOST_TEST(xs->Write(platform::kNoTx, "/still-mine", "1").ok());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace vnvram::sim
