// Sim grants across real processes: the parent acts as one domain, fork()ed
// children as others.
#define BOOST_TEST_MODULE sim_grant_test
#include <sys/mman.h>
#include <sys/wait.h>

#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <thread>

#include "platform/sim/sim_event_channels.h"
#include "platform/sim/sim_grant_mapper.h"
#include "platform/sim/sim_grant_sharer.h"
#include "platform/sim/sim_grant_table.h"
#include "platform/sim/sim_layout.h"
#include "platform/sim/sim_test_util.h"

namespace vnvram::sim {
namespace {

using platform::GrantRef;
using platform::kPageSize;
using testing::Child;
using testing::MessagePipe;
using testing::TempDir;

constexpr DomId kBackend = 1;
constexpr DomId kGuest = 2;
constexpr DomId kStranger = 3;

// In a child: report and fail with `code` unless `cond`.
#define CHILD_CHECK(cond, code)                                                     \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "child check failed at line %d: %s\n", __LINE__, #cond); \
      return code;                                                                  \
    }                                                                               \
  } while (0)

std::vector<uint32_t> RefsOf(const platform::SharedPages& s) {
  return {s.refs().begin(), s.refs().end()};
}

uint8_t Pattern(size_t i, uint8_t seed) {
  return static_cast<uint8_t>(i * 7 + seed);
}

BOOST_AUTO_TEST_CASE(MappedPagesShareBytesBothWaysAcrossProcesses) {
  TempDir dir;
  auto sharer = SimGrantSharer::Open(dir.path(), kBackend);
  BOOST_REQUIRE(sharer.ok());
  auto shared = (*sharer)->Share(kGuest, 3, /*writable=*/true);
  BOOST_REQUIRE_MESSAGE(shared.ok(), shared.status().ToString());
  auto data = (*shared)->data();
  BOOST_REQUIRE_EQUAL(data.size(), 3 * kPageSize);
  for (size_t i = 0; i < data.size(); ++i) data[i] = std::byte{Pattern(i, 1)};

  MessagePipe to_child, to_parent;
  Child child([&]() -> int {
    auto refs = to_child.Receive();
    CHILD_CHECK(refs && refs->size() == 3, 10);
    auto mapper = SimGrantMapper::Open(dir.path(), kGuest);
    CHILD_CHECK(mapper.ok(), 11);
    auto m = (*mapper)->Map(kBackend, *refs, /*writable=*/true);
    CHILD_CHECK(m.ok(), 12);
    auto d = (*m)->data();
    CHILD_CHECK(d.size() == 3 * kPageSize, 13);
    CHILD_CHECK((*m)->granter() == kBackend, 14);
    for (size_t i = 0; i < d.size(); ++i) CHILD_CHECK(d[i] == std::byte{Pattern(i, 1)}, 15);
    for (size_t i = 0; i < d.size(); ++i) d[i] = std::byte{Pattern(i, 9)};
    CHILD_CHECK(to_parent.Send({1}), 16);
    // Stay mapped until the parent has checked, then unmap.
    CHILD_CHECK(to_child.ReceiveOne().has_value(), 17);
    return 0;
  });
  BOOST_REQUIRE(child.started());
  BOOST_REQUIRE(to_child.Send(RefsOf(**shared)));
  BOOST_REQUIRE(to_parent.ReceiveOne().has_value());
  for (size_t i = 0; i < data.size(); ++i) {
    if (data[i] != std::byte{Pattern(i, 9)}) BOOST_FAIL("byte " << i << " not written by mapper");
  }
  BOOST_REQUIRE(to_child.Send({0}));
  BOOST_CHECK_EQUAL(child.ExitCode(), 0);
}

BOOST_AUTO_TEST_CASE(RefsOfOneShareAreDistinctAndNeverReserved) {
  TempDir dir;
  auto sharer = SimGrantSharer::Open(dir.path(), kBackend);
  BOOST_REQUIRE(sharer.ok());
  auto a = (*sharer)->Share(kGuest, 4, true);
  auto b = (*sharer)->Share(kGuest, 4, true);
  BOOST_REQUIRE(a.ok() && b.ok());
  std::vector<GrantRef> all = RefsOf(**a);
  for (GrantRef r : (*b)->refs()) all.push_back(r);
  std::sort(all.begin(), all.end());
  BOOST_CHECK(std::adjacent_find(all.begin(), all.end()) == all.end());
  BOOST_CHECK_GE(all.front(), kFirstGrantRef);
  BOOST_CHECK_EQUAL((*a)->grantee(), kGuest);
}

// Refs come from a compare-and-swap on the shared table: threads of two
// processes of one domain sharing at once never get the same ref.
BOOST_AUTO_TEST_CASE(ConcurrentSharesFromThreadsAndProcessesGetDistinctRefs) {
  TempDir dir;
  constexpr int kThreads = 4;
  constexpr int kSharesPerThread = 40;
  // Shares each thread of this process and of the child make, kept alive.
  auto share_all = [&](SimGrantSharer& sharer, std::vector<uint32_t>& refs_out,
                       std::vector<std::unique_ptr<platform::SharedPages>>& keep) -> bool {
    std::mutex mu;
    bool ok = true;
    std::vector<std::thread> threads;
    threads.reserve(kThreads);
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&]() {
        for (int i = 0; i < kSharesPerThread; ++i) {
          auto s = sharer.Share(kGuest, 1, true);
          std::lock_guard<std::mutex> lock(mu);
          if (!s.ok()) {
            ok = false;
            return;
          }
          refs_out.push_back((*s)->refs()[0]);
          keep.push_back(std::move(*s));
        }
      });
    }
    for (auto& th : threads) th.join();
    return ok;
  };
  MessagePipe to_parent, to_child;
  Child other([&]() -> int {
    auto sharer = SimGrantSharer::Open(dir.path(), kBackend);
    CHILD_CHECK(sharer.ok(), 10);
    std::vector<uint32_t> refs;
    std::vector<std::unique_ptr<platform::SharedPages>> keep;
    CHILD_CHECK(share_all(**sharer, refs, keep), 11);
    CHILD_CHECK(to_parent.Send(refs), 12);
    CHILD_CHECK(to_child.ReceiveOne().has_value(), 13);
    return 0;
  });
  auto sharer = SimGrantSharer::Open(dir.path(), kBackend);
  BOOST_REQUIRE(sharer.ok());
  std::vector<uint32_t> refs;
  std::vector<std::unique_ptr<platform::SharedPages>> keep;
  BOOST_REQUIRE(share_all(**sharer, refs, keep));
  auto theirs = to_parent.Receive();
  BOOST_REQUIRE(theirs.has_value());
  refs.insert(refs.end(), theirs->begin(), theirs->end());
  BOOST_CHECK_EQUAL(refs.size(), size_t{2 * kThreads * kSharesPerThread});
  std::sort(refs.begin(), refs.end());
  BOOST_CHECK(std::adjacent_find(refs.begin(), refs.end()) == refs.end());
  auto table = GrantTable::Open(dir.path(), kBackend);
  BOOST_REQUIRE(table.ok());
  BOOST_CHECK_EQUAL((*table)->PagesInUse(), refs.size());
  BOOST_REQUIRE(to_child.Send({0}));
  BOOST_CHECK_EQUAL(other.ExitCode(), 0);
  keep.clear();
  BOOST_CHECK_EQUAL((*table)->PagesInUse(), 0u);
}

BOOST_AUTO_TEST_CASE(ThirdDomainIsDeniedWithPermissionDenied) {
  TempDir dir;
  auto sharer = SimGrantSharer::Open(dir.path(), kBackend);
  BOOST_REQUIRE(sharer.ok());
  auto shared = (*sharer)->Share(kGuest, 2, true);
  BOOST_REQUIRE(shared.ok());
  const std::vector<uint32_t> refs = RefsOf(**shared);
  Child stranger([&]() -> int {
    auto mapper = SimGrantMapper::Open(dir.path(), kStranger);
    CHILD_CHECK(mapper.ok(), 10);
    auto rw = (*mapper)->Map(kBackend, refs, true);
    CHILD_CHECK(!rw.ok() && rw.status().code() == Code::kPermissionDenied, 11);
    auto ro = (*mapper)->Map(kBackend, refs, false);
    CHILD_CHECK(!ro.ok() && ro.status().code() == Code::kPermissionDenied, 12);
    return 0;
  });
  BOOST_CHECK_EQUAL(stranger.ExitCode(), 0);
}

BOOST_AUTO_TEST_CASE(ReadOnlyGrantRefusesWritableMapAndCannotBeWrittenThrough) {
  TempDir dir;
  auto sharer = SimGrantSharer::Open(dir.path(), kBackend);
  BOOST_REQUIRE(sharer.ok());
  auto shared = (*sharer)->Share(kGuest, 1, /*writable=*/false);
  BOOST_REQUIRE(shared.ok());
  (*shared)->data()[10] = std::byte{0x5A};
  const std::vector<uint32_t> refs = RefsOf(**shared);
  Child guest([&]() -> int {
    auto mapper = SimGrantMapper::Open(dir.path(), kGuest);
    CHILD_CHECK(mapper.ok(), 10);
    auto rw = (*mapper)->Map(kBackend, refs, true);
    CHILD_CHECK(!rw.ok() && rw.status().code() == Code::kPermissionDenied, 11);
    auto ro = (*mapper)->Map(kBackend, refs, false);
    CHILD_CHECK(ro.ok(), 12);
    std::byte* p = (*ro)->data().data();
    CHILD_CHECK(p[10] == std::byte{0x5A}, 13);
    // The backing file was opened read-only: the page cannot be made writable.
    CHILD_CHECK(::mprotect(p, kPageSize, PROT_READ | PROT_WRITE) != 0 && errno == EACCES, 14);
    // And a store faults.
    const pid_t writer = ::fork();
    if (writer == 0) {
      ::signal(SIGSEGV, SIG_DFL);  // not Boost.Test's handler
      *reinterpret_cast<volatile std::byte*>(p) = std::byte{1};
      ::_exit(0);
    }
    int status = 0;
    CHILD_CHECK(::waitpid(writer, &status, 0) == writer, 15);
    CHILD_CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV, 16);
    return 0;
  });
  BOOST_CHECK_EQUAL(guest.ExitCode(), 0);
  BOOST_CHECK((*shared)->data()[0] == std::byte{0});
}

BOOST_AUTO_TEST_CASE(RevokeFailsNewMapsButExistingMappingStaysValid) {
  TempDir dir;
  auto sharer = SimGrantSharer::Open(dir.path(), kBackend);
  BOOST_REQUIRE(sharer.ok());
  auto shared = (*sharer)->Share(kGuest, 2, true);
  BOOST_REQUIRE(shared.ok());
  (*shared)->data()[kPageSize + 1] = std::byte{0x77};
  const std::vector<uint32_t> refs = RefsOf(**shared);
  MessagePipe to_child, to_parent;
  Child guest([&]() -> int {
    auto mapper = SimGrantMapper::Open(dir.path(), kGuest);
    CHILD_CHECK(mapper.ok(), 10);
    auto m = (*mapper)->Map(kBackend, refs, true);
    CHILD_CHECK(m.ok(), 11);
    CHILD_CHECK(to_parent.Send({1}), 12);
    CHILD_CHECK(to_child.ReceiveOne().has_value(), 13);  // parent revoked
    // Still mapped and usable, as Xen defers freeing a mapped page.
    CHILD_CHECK((*m)->data()[kPageSize + 1] == std::byte{0x77}, 14);
    (*m)->data()[0] = std::byte{1};
    auto again = (*mapper)->Map(kBackend, refs, true);
    CHILD_CHECK(!again.ok() && again.status().code() == Code::kNotFound, 15);
    auto one = (*mapper)->Map(kBackend, std::span<const GrantRef>(refs).subspan(1), false);
    CHILD_CHECK(!one.ok() && one.status().code() == Code::kNotFound, 16);
    return 0;
  });
  BOOST_REQUIRE(to_parent.ReceiveOne().has_value());
  const std::string backing = GrantPagesDir(dir.path(), kBackend);
  shared->reset();  // revoke
  BOOST_CHECK(std::filesystem::is_empty(backing));
  BOOST_REQUIRE(to_child.Send({1}));
  BOOST_CHECK_EQUAL(guest.ExitCode(), 0);
}

BOOST_AUTO_TEST_CASE(RefNotInUseIsNotFoundAndRefOutsideTableIsInvalid) {
  TempDir dir;
  auto mapper = SimGrantMapper::Open(dir.path(), kGuest);
  BOOST_REQUIRE(mapper.ok());
  const GrantRef unused[] = {100};
  auto m = (*mapper)->Map(kBackend, unused, false);
  BOOST_REQUIRE(!m.ok());
  BOOST_CHECK(m.status().code() == Code::kNotFound);
  const GrantRef outside[] = {kGrantTableCapacity};
  m = (*mapper)->Map(kBackend, outside, false);
  BOOST_REQUIRE(!m.ok());
  BOOST_CHECK(m.status().code() == Code::kInvalidArgument);
  const GrantRef reserved[] = {0};
  m = (*mapper)->Map(kBackend, reserved, false);
  BOOST_CHECK(m.status().code() == Code::kInvalidArgument);
  m = (*mapper)->Map(kBackend, {}, false);
  BOOST_CHECK(m.status().code() == Code::kInvalidArgument);
}

BOOST_AUTO_TEST_CASE(GntallocLimitIsDomainWideAndReturnsResourceExhausted) {
  TempDir dir;
  auto sharer = SimGrantSharer::Open(dir.path(), kBackend, /*limit=*/4);
  BOOST_REQUIRE(sharer.ok());
  auto three = (*sharer)->Share(kGuest, 3, true);
  BOOST_REQUIRE(three.ok());
  auto two = (*sharer)->Share(kGuest, 2, true);
  BOOST_REQUIRE(!two.ok());
  BOOST_CHECK(two.status().code() == Code::kResourceExhausted);
  // Another process of the same domain counts against the same pages.
  Child same_domain([&]() -> int {
    auto other = SimGrantSharer::Open(dir.path(), kBackend, 4);
    CHILD_CHECK(other.ok(), 10);
    auto s2 = (*other)->Share(kGuest, 2, true);
    CHILD_CHECK(!s2.ok() && s2.status().code() == Code::kResourceExhausted, 11);
    auto s1 = (*other)->Share(kGuest, 1, true);
    CHILD_CHECK(s1.ok(), 12);
    return 0;
  });
  BOOST_CHECK_EQUAL(same_domain.ExitCode(), 0);
  three->reset();
  auto four = (*sharer)->Share(kGuest, 4, true);
  BOOST_CHECK_MESSAGE(four.ok(), four.status().ToString());
}

BOOST_AUTO_TEST_CASE(GntallocLimitComesFromEnvironmentWithDefault1024) {
  TempDir dir;
  ::unsetenv(kGntallocLimitEnv);
  auto def = SimGrantSharer::Open(dir.path(), kBackend);
  BOOST_REQUIRE(def.ok());
  BOOST_CHECK_EQUAL((*def)->limit(), 1024u);
  ::setenv(kGntallocLimitEnv, "2", 1);
  auto two = SimGrantSharer::Open(dir.path(), kBackend);
  BOOST_REQUIRE(two.ok());
  BOOST_CHECK_EQUAL((*two)->limit(), 2u);
  BOOST_CHECK((*two)->Share(kGuest, 3, true).status().code() == Code::kResourceExhausted);
  for (const char* bad : {"", "0", "-1", "12x", "0x10"}) {
    ::setenv(kGntallocLimitEnv, bad, 1);
    auto s = SimGrantSharer::Open(dir.path(), kBackend);
    BOOST_CHECK_MESSAGE(!s.ok() && s.status().code() == Code::kInvalidArgument, bad);
  }
  ::unsetenv(kGntallocLimitEnv);
}

BOOST_AUTO_TEST_CASE(DeadGranterRefsCannotBeMappedAndItsPagesAreReclaimed) {
  TempDir dir;
  MessagePipe to_parent;
  Child granter([&]() -> int {
    auto sharer = SimGrantSharer::Open(dir.path(), kBackend, 4);
    CHILD_CHECK(sharer.ok(), 10);
    auto shared = (*sharer)->Share(kGuest, 4, true);
    CHILD_CHECK(shared.ok(), 11);
    CHILD_CHECK(to_parent.Send(RefsOf(**shared)), 12);
    ::_exit(0);  // dies without revoking
  });
  auto refs = to_parent.Receive();
  BOOST_REQUIRE(refs && refs->size() == 4);
  BOOST_REQUIRE_EQUAL(granter.ExitCode(), 0);
  auto mapper = SimGrantMapper::Open(dir.path(), kGuest);
  BOOST_REQUIRE(mapper.ok());
  auto m = (*mapper)->Map(kBackend, *refs, true);
  BOOST_REQUIRE(!m.ok());
  BOOST_CHECK(m.status().code() == Code::kNotFound);
  auto sharer = SimGrantSharer::Open(dir.path(), kBackend, 4);
  BOOST_REQUIRE(sharer.ok());
  auto s = (*sharer)->Share(kGuest, 4, true);  // reclaims the dead one's pages
  BOOST_CHECK_MESSAGE(s.ok(), s.status().ToString());
}

// Polls `evtchn` for an event on `port` until the deadline.
bool AwaitEvent(platform::EventChannels& evtchn, platform::EvtchnPort port) {
  const Deadline deadline(SystemClock::Instance(), testing::kTestDeadline);
  while (testing::WaitReadable(evtchn.Fd(), deadline)) {
    auto p = evtchn.Pending();
    if (!p.ok()) return false;
    if (*p && **p == port) return evtchn.Unmask(port).ok();
  }
  return false;
}

// Sets up: parent = backend (dom 1) with an unbound port for the guest and a
// one-page share; child = guest (dom 2) binds the port and maps the page
// with unmap-notify {byte 0, its port}. `finish` decides how the child ends.
void RunMapperNotifyCase(bool orderly) {
  TempDir dir;
  auto evtchn = SimEventChannels::Open(dir.path(), kBackend);
  BOOST_REQUIRE(evtchn.ok());
  auto port = (*evtchn)->BindUnbound(kGuest);
  BOOST_REQUIRE(port.ok());
  auto sharer = SimGrantSharer::Open(dir.path(), kBackend);
  BOOST_REQUIRE(sharer.ok());
  auto shared = (*sharer)->Share(kGuest, 1, true);
  BOOST_REQUIRE(shared.ok());
  std::byte* page = (*shared)->data().data();
  page[0] = std::byte{0xAA};
  const uint32_t ref = (*shared)->refs()[0];

  MessagePipe to_child, to_parent;
  Child guest([&]() -> int {
    auto ev = SimEventChannels::Open(dir.path(), kGuest);
    CHILD_CHECK(ev.ok(), 10);
    auto local = (*ev)->BindInterdomain(kBackend, *port);
    CHILD_CHECK(local.ok(), 11);
    auto mapper = SimGrantMapper::Open(dir.path(), kGuest);
    CHILD_CHECK(mapper.ok(), 12);
    const GrantRef refs[] = {ref};
    auto m = (*mapper)->Map(kBackend, refs, true, platform::UnmapNotify{0, *local});
    CHILD_CHECK(m.ok(), 13);
    (*m)->data()[1] = std::byte{0xBB};
    CHILD_CHECK(to_parent.Send({1}), 14);
    CHILD_CHECK(to_child.ReceiveOne().has_value(), 15);
    if (!orderly) ::_exit(0);  // no destructor runs: the watchdog must notify
    m->reset();
    return 0;
  });
  BOOST_REQUIRE(to_parent.ReceiveOne().has_value());
  BOOST_CHECK(page[0] == std::byte{0xAA});
  BOOST_CHECK(page[1] == std::byte{0xBB});
  // Nothing pending yet.
  auto none = (*evtchn)->Pending();
  BOOST_REQUIRE(none.ok());
  BOOST_CHECK(!none->has_value());
  BOOST_REQUIRE(to_child.Send({1}));
  BOOST_CHECK(AwaitEvent(**evtchn, *port));
  BOOST_CHECK(page[0] == std::byte{0});
  BOOST_CHECK(page[1] == std::byte{0xBB});
  BOOST_CHECK_EQUAL(guest.ExitCode(), 0);
}

BOOST_AUTO_TEST_CASE(UnmapNotifyOnOrderlyUnmapClearsByteAndSendsEvent) {
  RunMapperNotifyCase(/*orderly=*/true);
}

BOOST_AUTO_TEST_CASE(UnmapNotifyFiresWhenMapperProcessDiesWithoutUnmapping) {
  RunMapperNotifyCase(/*orderly=*/false);
}

BOOST_AUTO_TEST_CASE(SharerUnmapNotifyFiresWhenGranterProcessDies) {
  TempDir dir;
  auto evtchn = SimEventChannels::Open(dir.path(), kGuest);
  BOOST_REQUIRE(evtchn.ok());
  auto port = (*evtchn)->BindUnbound(kBackend);
  BOOST_REQUIRE(port.ok());
  MessagePipe to_parent, to_child;
  Child backend([&]() -> int {
    auto ev = SimEventChannels::Open(dir.path(), kBackend);
    CHILD_CHECK(ev.ok(), 10);
    auto local = (*ev)->BindInterdomain(kGuest, *port);
    CHILD_CHECK(local.ok(), 11);
    auto sharer = SimGrantSharer::Open(dir.path(), kBackend);
    CHILD_CHECK(sharer.ok(), 12);
    auto shared = (*sharer)->Share(kGuest, 1, true, platform::UnmapNotify{8, *local});
    CHILD_CHECK(shared.ok(), 13);
    (*shared)->data()[8] = std::byte{1};
    CHILD_CHECK(to_parent.Send(RefsOf(**shared)), 14);
    CHILD_CHECK(to_child.ReceiveOne().has_value(), 15);
    ::_exit(0);
  });
  auto refs = to_parent.Receive();
  BOOST_REQUIRE(refs && refs->size() == 1);
  auto mapper = SimGrantMapper::Open(dir.path(), kGuest);
  BOOST_REQUIRE(mapper.ok());
  auto m = (*mapper)->Map(kBackend, *refs, true);
  BOOST_REQUIRE(m.ok());
  BOOST_CHECK((*m)->data()[8] == std::byte{1});
  BOOST_REQUIRE(to_child.Send({1}));
  BOOST_CHECK(AwaitEvent(**evtchn, *port));
  BOOST_CHECK((*m)->data()[8] == std::byte{0});
  BOOST_CHECK_EQUAL(backend.ExitCode(), 0);
}

BOOST_AUTO_TEST_CASE(UnmapNotifyIsRefusedOnMultiPageOrBadOffset) {
  TempDir dir;
  auto sharer = SimGrantSharer::Open(dir.path(), kBackend);
  BOOST_REQUIRE(sharer.ok());
  auto multi = (*sharer)->Share(kGuest, 2, true, platform::UnmapNotify{0, std::nullopt});
  BOOST_CHECK(multi.status().code() == Code::kNotSupported);
  auto bad = (*sharer)->Share(kGuest, 1, true, platform::UnmapNotify{4096, std::nullopt});
  BOOST_CHECK(bad.status().code() == Code::kOutOfRange);
  auto unbound_port = (*sharer)->Share(kGuest, 1, true, platform::UnmapNotify{std::nullopt, 7});
  BOOST_CHECK(unbound_port.status().code() == Code::kInvalidArgument);
  // Failed shares gave their pages back.
  auto table = GrantTable::Open(dir.path(), kBackend);
  BOOST_REQUIRE(table.ok());
  BOOST_CHECK_EQUAL((*table)->PagesInUse(), 0u);
}

}  // namespace
}  // namespace vnvram::sim
