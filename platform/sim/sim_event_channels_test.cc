// Sim event channels: Xen's binding rules, notification across real
// processes, pending/unmask coalescing, unbind. Waits are polls on Fd()
// with a deadline, never sleeps.
#define BOOST_TEST_MODULE sim_event_channels_test
#include "platform/sim/sim_event_channels.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <boost/test/unit_test.hpp>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "platform/sim/sim_layout.h"
#include "platform/sim/sim_test_util.h"

namespace vnvram::sim {
namespace {

using platform::EvtchnPort;
using testing::Child;
using testing::MessagePipe;
using testing::TempDir;

constexpr DomId kBackend = 0;
constexpr DomId kGuest = 5;
constexpr DomId kStranger = 6;

#define CHILD_CHECK(cond, code)                                                     \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "child check failed at line %d: %s\n", __LINE__, #cond); \
      return code;                                                                  \
    }                                                                               \
  } while (0)

// Waits for an event on `port` (the only one expected), then unmasks it.
bool AwaitEvent(platform::EventChannels& ev, EvtchnPort port) {
  const Deadline deadline(SystemClock::Instance(), testing::kTestDeadline);
  while (testing::WaitReadable(ev.Fd(), deadline)) {
    auto p = ev.Pending();
    if (!p.ok() || !*p) continue;
    return **p == port && ev.Unmask(port).ok();
  }
  return false;
}

// Fd() readable right now?
bool Readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1;
}

std::unique_ptr<SimEventChannels> OpenOrDie(const std::string& dir, DomId d) {
  auto ev = SimEventChannels::Open(dir, d);
  BOOST_REQUIRE_MESSAGE(ev.ok(), ev.status().ToString());
  return std::move(*ev);
}

BOOST_AUTO_TEST_CASE(InterdomainChannelCarriesNotificationsBothWaysAcrossProcesses) {
  TempDir dir;
  auto backend = OpenOrDie(dir.path(), kBackend);
  auto port = backend->BindUnbound(kGuest);
  BOOST_REQUIRE(port.ok());
  BOOST_CHECK_NE(*port, 0u);
  MessagePipe to_child, to_parent;
  Child guest([&]() -> int {
    auto ev = SimEventChannels::Open(dir.path(), kGuest);
    CHILD_CHECK(ev.ok(), 10);
    auto local = (*ev)->BindInterdomain(kBackend, *port);
    CHILD_CHECK(local.ok(), 11);
    CHILD_CHECK(to_parent.Send({*local}), 12);
    CHILD_CHECK((*ev)->Notify(*local).ok(), 13);
    CHILD_CHECK(AwaitEvent(**ev, *local), 14);  // the backend's answer
    CHILD_CHECK((*ev)->Notify(*local).ok(), 15);
    CHILD_CHECK(to_child.ReceiveOne().has_value(), 16);
    return 0;
  });
  auto guest_port = to_parent.ReceiveOne();
  BOOST_REQUIRE(guest_port.has_value());
  BOOST_CHECK(AwaitEvent(*backend, *port));
  BOOST_REQUIRE(backend->Notify(*port).ok());
  BOOST_CHECK(AwaitEvent(*backend, *port));  // the guest's second event
  BOOST_REQUIRE(to_child.Send({0}));
  BOOST_CHECK_EQUAL(guest.ExitCode(), 0);
}

BOOST_AUTO_TEST_CASE(BindInterdomainRefusesOtherDomainsBoundAndMissingPortsAsXenDoes) {
  TempDir dir;
  auto backend = OpenOrDie(dir.path(), kBackend);
  auto guest = OpenOrDie(dir.path(), kGuest);
  auto stranger = OpenOrDie(dir.path(), kStranger);
  auto port = backend->BindUnbound(kGuest);
  BOOST_REQUIRE(port.ok());

  // Offered to the guest only: EINVAL for anyone else, as on Xen.
  auto denied = stranger->BindInterdomain(kBackend, *port);
  BOOST_REQUIRE(!denied.ok());
  BOOST_CHECK(denied.status().code() == Code::kInvalidArgument);
  BOOST_CHECK_EQUAL(denied.status().sys_errno(), EINVAL);
  // A domain with no event channels at all: ESRCH, "no such domain".
  auto nodom = guest->BindInterdomain(42, 1);
  BOOST_REQUIRE(!nodom.ok());
  BOOST_CHECK(nodom.status().code() == Code::kNotFound);
  // A port that was never allocated, port 0, one past the table: EINVAL.
  for (EvtchnPort bad : {EvtchnPort{999}, EvtchnPort{0}, kPortTableCapacity}) {
    auto r = guest->BindInterdomain(kBackend, bad);
    BOOST_REQUIRE(!r.ok());
    BOOST_CHECK(r.status().code() == Code::kInvalidArgument);
  }
  auto ok = guest->BindInterdomain(kBackend, *port);
  BOOST_REQUIRE(ok.ok());
  // Already bound: EINVAL, as the port is no longer unbound.
  auto twice = guest->BindInterdomain(kBackend, *port);
  BOOST_REQUIRE(!twice.ok());
  BOOST_CHECK(twice.status().code() == Code::kInvalidArgument);
  // Reserved remote domains are refused; DOMID_SELF means ourselves.
  BOOST_CHECK(!guest->BindUnbound(kDomIdFirstReserved + 1).ok());
  auto self_port = guest->BindUnbound(kDomIdSelf);
  BOOST_REQUIRE(self_port.ok());
  auto loop = guest->BindInterdomain(kGuest, *self_port);
  BOOST_REQUIRE(loop.ok());
  BOOST_REQUIRE(guest->Notify(*loop).ok());
  BOOST_CHECK(AwaitEvent(*guest, *self_port));
}

BOOST_AUTO_TEST_CASE(EventsCoalesceWhileMaskedAndOneIsRedeliveredOnUnmask) {
  TempDir dir;
  auto backend = OpenOrDie(dir.path(), kBackend);
  auto guest = OpenOrDie(dir.path(), kGuest);
  auto port = backend->BindUnbound(kGuest);
  BOOST_REQUIRE(port.ok());
  auto gport = guest->BindInterdomain(kBackend, *port);
  BOOST_REQUIRE(gport.ok());

  BOOST_CHECK(!Readable(backend->Fd()));
  for (int i = 0; i < 5; ++i) BOOST_REQUIRE(guest->Notify(*gport).ok());
  BOOST_CHECK(Readable(backend->Fd()));
  auto p = backend->Pending();
  BOOST_REQUIRE(p.ok() && p->has_value());
  BOOST_CHECK_EQUAL(**p, *port);
  // Five notifications, one event; the port is now masked.
  BOOST_CHECK(!Readable(backend->Fd()));
  p = backend->Pending();
  BOOST_REQUIRE(p.ok());
  BOOST_CHECK(!p->has_value());
  // Events while masked stay pending but do not wake the poller.
  for (int i = 0; i < 3; ++i) BOOST_REQUIRE(guest->Notify(*gport).ok());
  BOOST_CHECK(!Readable(backend->Fd()));
  BOOST_CHECK(!backend->Pending()->has_value());
  BOOST_REQUIRE(backend->Unmask(*port).ok());
  BOOST_CHECK(Readable(backend->Fd()));
  p = backend->Pending();
  BOOST_REQUIRE(p.ok() && p->has_value());
  BOOST_CHECK_EQUAL(**p, *port);
  BOOST_REQUIRE(backend->Unmask(*port).ok());
  BOOST_CHECK(!Readable(backend->Fd()));
  BOOST_CHECK(!backend->Pending()->has_value());
  // Unmasking an unmasked port is harmless.
  BOOST_CHECK(backend->Unmask(*port).ok());
}

BOOST_AUTO_TEST_CASE(NotifyNeverBlocksWhenThePeerDoesNotDrain) {
  TempDir dir;
  auto backend = OpenOrDie(dir.path(), kBackend);
  auto guest = OpenOrDie(dir.path(), kGuest);
  auto port = backend->BindUnbound(kGuest);
  BOOST_REQUIRE(port.ok());
  auto gport = guest->BindInterdomain(kBackend, *port);
  BOOST_REQUIRE(gport.ok());
  for (int i = 0; i < 10000; ++i) {
    Status s = guest->Notify(*gport);
    if (!s.ok()) BOOST_FAIL("notify " << i << ": " << s.ToString());
  }
  auto p = backend->Pending();
  BOOST_REQUIRE(p.ok() && p->has_value());
  BOOST_REQUIRE(backend->Unmask(*port).ok());
  BOOST_CHECK(!backend->Pending()->has_value());
}

BOOST_AUTO_TEST_CASE(ConcurrentNotifiersAndOnePollerNeverErrOrLoseTheLastEvent) {
  TempDir dir;
  auto backend = OpenOrDie(dir.path(), kBackend);
  auto guest = OpenOrDie(dir.path(), kGuest);
  auto port = backend->BindUnbound(kGuest);
  BOOST_REQUIRE(port.ok());
  auto gport = guest->BindInterdomain(kBackend, *port);
  BOOST_REQUIRE(gport.ok());
  std::atomic<int> failures{0};
  std::atomic<int> done{0};
  const int done_fd = ::eventfd(0, EFD_CLOEXEC);  // readable once a notifier finished
  BOOST_REQUIRE(done_fd >= 0);
  constexpr int kThreads = 4;
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&]() {
      for (int i = 0; i < 2000; ++i) {
        if (!guest->Notify(*gport).ok()) failures.fetch_add(1);
      }
      done.fetch_add(1);
      const uint64_t one = 1;
      if (::write(done_fd, &one, sizeof one) != 8) failures.fetch_add(1);  // no Boost asserts here
    });
  }
  // Take events until every notifier has finished, then drain the rest.
  int events = 0;
  const Deadline deadline(SystemClock::Instance(), testing::kTestDeadline);
  bool drained = false;
  while (!drained && !deadline.Expired()) {
    const bool all_done = done.load() == kThreads;
    auto p = backend->Pending();
    BOOST_REQUIRE(p.ok());
    if (p->has_value()) {
      ++events;
      BOOST_REQUIRE(backend->Unmask(*port).ok());
      continue;
    }
    if (all_done) {
      drained = true;
      break;
    }
    pollfd fds[2] = {{backend->Fd(), POLLIN, 0}, {done_fd, POLLIN, 0}};
    ::poll(fds, 2, deadline.RemainingMillisForPoll());
    if (fds[1].revents != 0) {
      uint64_t n = 0;
      BOOST_REQUIRE(::read(done_fd, &n, sizeof n) == 8);
    }
  }
  BOOST_CHECK(drained);
  for (auto& th : threads) th.join();
  ::close(done_fd);
  BOOST_CHECK_EQUAL(failures.load(), 0);
  BOOST_CHECK_GE(events, 1);
  BOOST_CHECK(!backend->Pending()->has_value());
}

BOOST_AUTO_TEST_CASE(TwoPortsOnOneHandleAreReportedSeparately) {
  TempDir dir;
  auto backend = OpenOrDie(dir.path(), kBackend);
  auto guest = OpenOrDie(dir.path(), kGuest);
  auto a = backend->BindUnbound(kGuest);
  auto b = backend->BindUnbound(kGuest);
  BOOST_REQUIRE(a.ok() && b.ok());
  BOOST_CHECK_NE(*a, *b);
  auto ga = guest->BindInterdomain(kBackend, *a);
  auto gb = guest->BindInterdomain(kBackend, *b);
  BOOST_REQUIRE(ga.ok() && gb.ok());
  BOOST_REQUIRE(guest->Notify(*gb).ok());
  BOOST_REQUIRE(guest->Notify(*ga).ok());
  std::vector<EvtchnPort> seen;
  for (int i = 0; i < 2; ++i) {
    auto p = backend->Pending();
    BOOST_REQUIRE(p.ok() && p->has_value());
    seen.push_back(**p);
  }
  BOOST_CHECK(!backend->Pending()->has_value());
  std::sort(seen.begin(), seen.end());
  BOOST_CHECK(seen == (std::vector<EvtchnPort>{std::min(*a, *b), std::max(*a, *b)}));
}

BOOST_AUTO_TEST_CASE(UnbindClosesThePortAndReturnsThePeersPortToUnbound) {
  TempDir dir;
  auto backend = OpenOrDie(dir.path(), kBackend);
  auto guest = OpenOrDie(dir.path(), kGuest);
  auto port = backend->BindUnbound(kGuest);
  BOOST_REQUIRE(port.ok());
  auto gport = guest->BindInterdomain(kBackend, *port);
  BOOST_REQUIRE(gport.ok());
  const std::string sock = PortSocketPath(dir.path(), kGuest, *gport);
  BOOST_CHECK(std::filesystem::exists(sock));

  BOOST_REQUIRE(guest->Unbind(*gport).ok());
  BOOST_CHECK(!std::filesystem::exists(sock));
  // The port is gone from this handle.
  BOOST_CHECK(guest->Notify(*gport).code() == Code::kNotFound);
  BOOST_CHECK(guest->Unmask(*gport).code() == Code::kNotFound);
  BOOST_CHECK(guest->Unbind(*gport).code() == Code::kNotFound);
  // The backend's end is unbound again: notifying it is dropped, not an
  // error, and the guest may bind it anew.
  BOOST_CHECK(backend->Notify(*port).ok());
  auto again = guest->BindInterdomain(kBackend, *port);
  BOOST_REQUIRE_MESSAGE(again.ok(), again.status().ToString());
  BOOST_REQUIRE(guest->Notify(*again).ok());
  BOOST_CHECK(AwaitEvent(*backend, *port));
}

BOOST_AUTO_TEST_CASE(NotifyingAPeerProcessThatDiedIsNotAnError) {
  TempDir dir;
  auto backend = OpenOrDie(dir.path(), kBackend);
  auto port = backend->BindUnbound(kGuest);
  BOOST_REQUIRE(port.ok());
  MessagePipe to_parent;
  Child guest([&]() -> int {
    auto ev = SimEventChannels::Open(dir.path(), kGuest);
    CHILD_CHECK(ev.ok(), 10);
    auto local = (*ev)->BindInterdomain(kBackend, *port);
    CHILD_CHECK(local.ok(), 11);
    CHILD_CHECK(to_parent.Send({*local}), 12);
    ::_exit(0);  // dies holding the port
  });
  BOOST_REQUIRE(to_parent.ReceiveOne().has_value());
  BOOST_REQUIRE_EQUAL(guest.ExitCode(), 0);
  for (int i = 0; i < 3; ++i) BOOST_CHECK(backend->Notify(*port).ok());
  BOOST_CHECK(backend->Unbind(*port).ok());
}

BOOST_AUTO_TEST_CASE(PortBoundByAProcessThatDiedCanBeBoundByItsSuccessor) {
  TempDir dir;
  auto guest = OpenOrDie(dir.path(), kGuest);
  auto port = guest->BindUnbound(kBackend);
  BOOST_REQUIRE(port.ok());
  MessagePipe to_parent;
  Child first_backend([&]() -> int {
    auto ev = SimEventChannels::Open(dir.path(), kBackend);
    CHILD_CHECK(ev.ok(), 10);
    CHILD_CHECK((*ev)->BindInterdomain(kGuest, *port).ok(), 11);
    CHILD_CHECK(to_parent.Send({1}), 12);
    ::_exit(0);  // dies bound, as a crashed backend would
  });
  BOOST_REQUIRE(to_parent.ReceiveOne().has_value());
  BOOST_REQUIRE_EQUAL(first_backend.ExitCode(), 0);
  // On Xen the dead end's close returns the guest's port to unbound; the
  // restarted backend binds it again and events flow.
  auto backend = OpenOrDie(dir.path(), kBackend);
  auto bport = backend->BindInterdomain(kGuest, *port);
  BOOST_REQUIRE_MESSAGE(bport.ok(), bport.status().ToString());
  BOOST_REQUIRE(backend->Notify(*bport).ok());
  BOOST_CHECK(AwaitEvent(*guest, *port));
  BOOST_REQUIRE(guest->Notify(*port).ok());
  BOOST_CHECK(AwaitEvent(*backend, *bport));
  // While that backend lives, nobody else of its domain can take the port.
  auto other = OpenOrDie(dir.path(), kBackend);
  BOOST_CHECK(other->BindInterdomain(kGuest, *port).status().code() == Code::kInvalidArgument);
}

BOOST_AUTO_TEST_CASE(UnboundPortOfADeadProcessCannotBeBound) {
  TempDir dir;
  MessagePipe to_parent;
  Child backend([&]() -> int {
    auto ev = SimEventChannels::Open(dir.path(), kBackend);
    CHILD_CHECK(ev.ok(), 10);
    auto port = (*ev)->BindUnbound(kGuest);
    CHILD_CHECK(port.ok(), 11);
    CHILD_CHECK(to_parent.Send({*port}), 12);
    ::_exit(0);
  });
  auto port = to_parent.ReceiveOne();
  BOOST_REQUIRE(port.has_value());
  BOOST_REQUIRE_EQUAL(backend.ExitCode(), 0);
  auto guest = OpenOrDie(dir.path(), kGuest);
  auto r = guest->BindInterdomain(kBackend, *port);
  BOOST_REQUIRE(!r.ok());
  BOOST_CHECK(r.status().code() == Code::kInvalidArgument);
}

BOOST_AUTO_TEST_CASE(ClosingTheHandleUnbindsItsPorts) {
  TempDir dir;
  auto backend = OpenOrDie(dir.path(), kBackend);
  auto port = backend->BindUnbound(kGuest);
  BOOST_REQUIRE(port.ok());
  {
    auto guest = OpenOrDie(dir.path(), kGuest);
    BOOST_REQUIRE(guest->BindInterdomain(kBackend, *port).ok());
  }
  // The guest's end went away with its handle: the backend's port is
  // offered again.
  auto guest = OpenOrDie(dir.path(), kGuest);
  BOOST_CHECK(guest->BindInterdomain(kBackend, *port).ok());
}

BOOST_AUTO_TEST_CASE(TooLongSimDirectoryIsRefusedClearly) {
  const std::string dir = "/tmp/" + std::string(120, 'x');
  auto ev = SimEventChannels::Open(dir, kGuest);
  BOOST_REQUIRE(!ev.ok());
  BOOST_CHECK(ev.status().code() == Code::kInvalidArgument);
}

}  // namespace
}  // namespace vnvram::sim
