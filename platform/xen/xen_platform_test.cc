// xen_platform_test: the Xen platform against a real hypervisor, in dom0 or
// a guest: self-granted pages mapped back, unmap notify from both ends,
// loopback event channels, refused mappings, xenstore, domain queries.
//
// Self-contained so the Xen lab can copy it (with the shared libraries ldd
// lists) into an initramfs: it reads no file of the build or source tree.
// Without /dev/xen/{gntdev,gntalloc,evtchn} it prints "SKIP: <reason>" and
// exits 77, which ctest reports as skipped. It ends with one line,
// "PASS: xen_platform_test" or "FAIL: xen_platform_test (exit N)".
// VNVRAM_TEST_DEBUG=1 shows the libxen* libraries' own messages.
#define BOOST_TEST_MODULE xen_platform_test
#define BOOST_TEST_NO_MAIN
#include "platform/xen/xen_platform.h"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "common/log.h"
#include "common/parse.h"
#include "platform/platform.h"
#include "platform/xen/xen_domains.h"

namespace vnvram {
// Lets Boost.Test print a Code in a failed check.
inline std::ostream& boost_test_print_type(std::ostream& os, Code code) {
  return os << CodeName(code);
}
}  // namespace vnvram

namespace vnvram::xen {
namespace {

using platform::EventChannels;
using platform::EvtchnPort;
using platform::GrantRef;
using platform::kPageSize;
using platform::UnmapNotify;

// Upper bound for an event that should arrive at once; never a sleep.
constexpr int kEventTimeoutMs = 5000;

// Fails the current test with the status when it is not OK.
#define REQUIRE_OK(expr)                                         \
  do {                                                           \
    const ::vnvram::Status s_ = (expr);                          \
    BOOST_TEST_REQUIRE(s_.ok(), #expr << ": " << s_.ToString()); \
  } while (0)

// Evaluates a Result, fails the test on error, else yields the value.
template <typename T>
T Unwrap(Result<T> r, const char* what) {
  BOOST_TEST_REQUIRE(r.ok(), what << ": " << r.status().ToString());
  return std::move(r).value();
}
#define UNWRAP(expr) Unwrap((expr), #expr)

// Bytes as numbers, so Boost.Test can print them.
int B(std::byte b) {
  return std::to_integer<int>(b);
}

// Waits until `channels` reports a pending port; nullopt on timeout.
std::optional<EvtchnPort> WaitEvent(EventChannels& channels) {
  auto pending = UNWRAP(channels.Pending());
  if (pending) return pending;
  pollfd pfd{channels.Fd(), POLLIN, 0};
  const int n = ::poll(&pfd, 1, kEventTimeoutMs);
  BOOST_TEST_REQUIRE(n >= 0, "poll on the event channel fd failed");
  if (n == 0) return std::nullopt;
  return UNWRAP(channels.Pending());
}

// A loopback event channel: `a` allocated for ourselves, `b` bound to it.
struct Loopback {
  EvtchnPort a = 0;
  EvtchnPort b = 0;
};

struct XenFixture {
  XenFixture() {
    xen = UNWRAP(platform::OpenXenPlatform());
    self = xen->self_domid();
    sharer = UNWRAP(xen->OpenGrantSharer());
    mapper = UNWRAP(xen->OpenGrantMapper());
    channels = UNWRAP(xen->OpenEventChannels());
  }

  Loopback BindLoopback() {
    Loopback l;
    l.a = UNWRAP(channels->BindUnbound(self));
    l.b = UNWRAP(channels->BindInterdomain(self, l.a));
    // Xen raises an event on a newly bound interdomain port (covering any
    // sent before the bind): consume it so the test starts quiet.
    const auto initial = WaitEvent(*channels);
    BOOST_TEST_REQUIRE(initial.has_value(), "no event after BindInterdomain");
    BOOST_TEST_REQUIRE(*initial == l.b);
    REQUIRE_OK(channels->Unmask(l.b));
    BOOST_TEST_REQUIRE(!UNWRAP(channels->Pending()).has_value());
    return l;
  }

  std::unique_ptr<platform::Platform> xen;
  DomId self = 0;
  std::unique_ptr<platform::GrantSharer> sharer;
  std::unique_ptr<platform::GrantMapper> mapper;
  std::unique_ptr<EventChannels> channels;
};

BOOST_FIXTURE_TEST_SUITE(xen_platform, XenFixture)

BOOST_AUTO_TEST_CASE(SelfDomidMatchesXenstore) {
  BOOST_TEST(xen->name() == "xen");
  auto xs = UNWRAP(xen->OpenXenStore());
  auto text = xs->Read(platform::kNoTx, "domid");
  if (text.ok()) {
    BOOST_TEST(UNWRAP(ParseDomId(*text)) == self);
  } else {
    // Only dom0 before xen-init-dom0 has no "domid" key.
    BOOST_TEST(self == 0, text.status().ToString());
  }
  BOOST_TEST(UNWRAP(xs->GetDomainPath(self)) == "/local/domain/" + std::to_string(self));
  BOOST_TEST_MESSAGE("running in domain " << self);
}

BOOST_AUTO_TEST_CASE(XenstoreRoundTrip) {
  auto xs = UNWRAP(xen->OpenXenStore());
  const std::string dir = UNWRAP(xs->GetDomainPath(self)) + "/data";
  const std::string name = "vnvram-xen-platform-test-" + std::to_string(::getpid());
  const std::string path = dir + "/" + name;
  REQUIRE_OK(xs->Write(platform::kNoTx, path, "hello from the Xen platform"));
  BOOST_TEST(UNWRAP(xs->Read(platform::kNoTx, path)) == "hello from the Xen platform");
  const auto children = UNWRAP(xs->Directory(platform::kNoTx, dir));
  BOOST_TEST((std::find(children.begin(), children.end(), name) != children.end()));
  REQUIRE_OK(xs->Remove(platform::kNoTx, path));
  BOOST_TEST(xs->Read(platform::kNoTx, path).status().code() == Code::kNotFound);
}

BOOST_AUTO_TEST_CASE(SelfSharedPagesAreVisibleThroughBothMappings) {
  constexpr size_t kPages = 4;
  auto shared = UNWRAP(sharer->Share(self, kPages, /*writable=*/true));
  BOOST_TEST_REQUIRE(shared->refs().size() == kPages);
  BOOST_TEST_REQUIRE(shared->data().size() == kPages * kPageSize);
  BOOST_TEST(shared->grantee() == self);
  // gntalloc hands out zeroed pages.
  BOOST_TEST((std::all_of(shared->data().begin(), shared->data().end(),
                          [](std::byte b) { return b == std::byte{0}; })));

  auto mapping = UNWRAP(mapper->Map(self, shared->refs(), /*writable=*/true));
  BOOST_TEST_REQUIRE(mapping->data().size() == kPages * kPageSize);
  BOOST_TEST(mapping->granter() == self);
  BOOST_TEST(mapping->data().data() != shared->data().data());

  auto src = shared->data();
  for (size_t i = 0; i < src.size(); ++i) src[i] = std::byte(i * 7 + 1);
  auto dst = mapping->data();
  size_t mismatches = 0;
  for (size_t i = 0; i < dst.size(); ++i) mismatches += dst[i] != std::byte(i * 7 + 1);
  BOOST_TEST(mismatches == 0u);

  // And the other way, on the last page.
  const size_t last = (kPages - 1) * kPageSize;
  for (size_t i = 0; i < kPageSize; ++i) dst[last + i] = std::byte(0xA5 ^ i);
  mismatches = 0;
  for (size_t i = 0; i < kPageSize; ++i) mismatches += src[last + i] != std::byte(0xA5 ^ i);
  BOOST_TEST(mismatches == 0u);
}

BOOST_AUTO_TEST_CASE(ReadOnlyGrantMappedWritableIsRefused) {
  auto shared = UNWRAP(sharer->Share(self, 1, /*writable=*/false));
  shared->data()[10] = std::byte{0x42};
  auto refused = mapper->Map(self, shared->refs(), /*writable=*/true);
  BOOST_TEST_REQUIRE(!refused.ok());
  BOOST_TEST(refused.status().code() == Code::kPermissionDenied, refused.status().ToString());
  BOOST_TEST_MESSAGE("refused as expected: " << refused.status().ToString());

  auto mapping = UNWRAP(mapper->Map(self, shared->refs(), /*writable=*/false));
  BOOST_TEST(B(mapping->data()[10]) == 0x42);
}

BOOST_AUTO_TEST_CASE(GrantForAnotherDomainIsRefused) {
  const DomId other = self == 0 ? 1 : 0;
  auto shared = UNWRAP(sharer->Share(other, 1, /*writable=*/true));
  auto refused = mapper->Map(self, shared->refs(), /*writable=*/false);
  BOOST_TEST_REQUIRE(!refused.ok());
  BOOST_TEST(refused.status().code() == Code::kPermissionDenied, refused.status().ToString());
}

BOOST_AUTO_TEST_CASE(UnknownRefIsRefused) {
  const GrantRef bogus[] = {0x0FFFFFF0u};
  auto refused = mapper->Map(self, bogus, /*writable=*/true);
  BOOST_TEST_REQUIRE(!refused.ok());
  BOOST_TEST(refused.status().code() == Code::kPermissionDenied, refused.status().ToString());
}

BOOST_AUTO_TEST_CASE(SharerUnmapNotifyClearsByteAndSignals) {
  const Loopback l = BindLoopback();
  constexpr uint32_t kStatusByte = 100;
  auto shared = UNWRAP(sharer->Share(self, 1, /*writable=*/true,
                                     UnmapNotify{.byte_offset = kStatusByte, .port = l.a}));
  auto mapping = UNWRAP(mapper->Map(self, shared->refs(), /*writable=*/true));
  shared->data()[kStatusByte] = std::byte{0x5A};
  shared->data()[kStatusByte + 1] = std::byte{0x5B};
  BOOST_TEST(B(mapping->data()[kStatusByte]) == 0x5A);

  shared.reset();  // the sharer goes away: the kernel clears the byte, signals a
  BOOST_TEST(B(mapping->data()[kStatusByte]) == 0);
  BOOST_TEST(B(mapping->data()[kStatusByte + 1]) == 0x5B);
  const auto fired = WaitEvent(*channels);
  BOOST_TEST_REQUIRE(fired.has_value(), "no unmap-notify event within the timeout");
  BOOST_TEST(*fired == l.b);
  REQUIRE_OK(channels->Unmask(l.b));
}

BOOST_AUTO_TEST_CASE(MapperUnmapNotifyClearsByteAndSignals) {
  const Loopback l = BindLoopback();
  constexpr uint32_t kStatusByte = 200;
  auto shared = UNWRAP(sharer->Share(self, 1, /*writable=*/true));
  auto mapping = UNWRAP(mapper->Map(self, shared->refs(), /*writable=*/true,
                                    UnmapNotify{.byte_offset = kStatusByte, .port = l.b}));
  mapping->data()[kStatusByte] = std::byte{0x77};
  BOOST_TEST(B(shared->data()[kStatusByte]) == 0x77);

  mapping.reset();  // the mapper goes away: the kernel clears the byte, signals b
  BOOST_TEST(B(shared->data()[kStatusByte]) == 0);
  const auto fired = WaitEvent(*channels);
  BOOST_TEST_REQUIRE(fired.has_value(), "no unmap-notify event within the timeout");
  BOOST_TEST(*fired == l.a);
  REQUIRE_OK(channels->Unmask(l.a));
}

BOOST_AUTO_TEST_CASE(UnmapNotifyNeedsASinglePage) {
  auto multi = sharer->Share(self, 2, true, UnmapNotify{.byte_offset = 0, .port = {}});
  BOOST_TEST(multi.status().code() == Code::kNotSupported, multi.status().ToString());

  auto shared = UNWRAP(sharer->Share(self, 2, /*writable=*/true));
  auto map_multi =
      mapper->Map(self, shared->refs(), true, UnmapNotify{.byte_offset = 0, .port = {}});
  BOOST_TEST(map_multi.status().code() == Code::kNotSupported, map_multi.status().ToString());
  // Clearing a byte through a read-only mapping is impossible.
  auto ro =
      mapper->Map(self, shared->refs().first(1), false, UnmapNotify{.byte_offset = 0, .port = {}});
  BOOST_TEST(ro.status().code() == Code::kInvalidArgument, ro.status().ToString());
}

BOOST_AUTO_TEST_CASE(LoopbackEventChannelBothWays) {
  const Loopback l = BindLoopback();
  BOOST_TEST(l.a != l.b);
  BOOST_TEST(!UNWRAP(channels->Pending()).has_value());

  REQUIRE_OK(channels->Notify(l.b));
  auto fired = WaitEvent(*channels);
  BOOST_TEST_REQUIRE(fired.has_value(), "no event on a within the timeout");
  BOOST_TEST(*fired == l.a);
  // Masked until unmasked: nothing more is queued.
  BOOST_TEST(!UNWRAP(channels->Pending()).has_value());
  REQUIRE_OK(channels->Unmask(l.a));

  REQUIRE_OK(channels->Notify(l.a));
  fired = WaitEvent(*channels);
  BOOST_TEST_REQUIRE(fired.has_value(), "no event on b within the timeout");
  BOOST_TEST(*fired == l.b);
  REQUIRE_OK(channels->Unmask(l.b));

  // a is connected now: binding to it again is refused.
  auto again = channels->BindInterdomain(self, l.a);
  BOOST_TEST(again.status().code() == Code::kInvalidArgument, again.status().ToString());

  REQUIRE_OK(channels->Unbind(l.b));
  REQUIRE_OK(channels->Unbind(l.a));
  BOOST_TEST(channels->Notify(l.a).code() == Code::kNotFound);
  BOOST_TEST(channels->Unbind(l.a).code() == Code::kNotFound);
}

BOOST_AUTO_TEST_CASE(DomainQueries) {
  auto domains = XenDomains::Open();
  if (!domains.ok() && self != 0 && domains.status().code() == Code::kUnavailable) {
    BOOST_TEST_MESSAGE("no privcmd in domain " << self << ": " << domains.status().ToString());
    return;
  }
  BOOST_TEST_REQUIRE(domains.ok(), domains.status().ToString());
  auto info = (*domains)->GetDomainInfo(self);
  if (!info.ok() && info.status().code() == Code::kPermissionDenied) {
    BOOST_TEST(self != 0, "dom0 must be allowed domain queries");
    BOOST_TEST_MESSAGE("domain queries refused in domain " << self << " (expected in a guest)");
    return;
  }
  BOOST_TEST_REQUIRE(info.ok(), info.status().ToString());
  BOOST_TEST_REQUIRE(info->has_value());
  BOOST_TEST((*info)->domid == self);
  BOOST_TEST(!(*info)->dying);
  BOOST_TEST(UNWRAP((*domains)->IsAlive(self)));
  const DomId absent = kDomIdFirstReserved - 1;
  BOOST_TEST(!UNWRAP((*domains)->GetDomainInfo(absent)).has_value());
  BOOST_TEST(!UNWRAP((*domains)->IsAlive(absent)));
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace vnvram::xen

int main(int argc, char* argv[]) {
  const char* debug = std::getenv("VNVRAM_TEST_DEBUG");
  vnvram::log::Init("xen_platform_test", debug != nullptr && *debug != '\0' && *debug != '0'
                                             ? vnvram::log::Level::kDebug
                                             : vnvram::log::Level::kInfo);
  for (const auto device :
       {vnvram::xen::kGntdevDevice, vnvram::xen::kGntallocDevice, vnvram::xen::kEvtchnDevice}) {
    const vnvram::Status s = vnvram::xen::CheckXenDevice(device);
    if (!s.ok()) {
      std::printf("SKIP: %s\n", s.message().c_str());
      std::fflush(stdout);
      return 77;
    }
  }
  // Plain text for serial consoles and logs, unless the caller asked.
  ::setenv("BOOST_TEST_COLOR_OUTPUT", "no", /*overwrite=*/0);
  std::printf("xen_platform_test: /dev/xen present, testing the Xen platform\n");
  std::fflush(stdout);
  const int rc = boost::unit_test::unit_test_main(&init_unit_test, argc, argv);
  if (rc == 0) {
    std::printf("PASS: xen_platform_test\n");
  } else {
    std::printf("FAIL: xen_platform_test (exit %d)\n", rc);
  }
  std::fflush(stdout);
  return rc;
}
