// SimPlatform: identity, the xenstore socket each domain uses, and handles
// opened through the Platform interface working together.
#define BOOST_TEST_MODULE sim_platform_test
#include "platform/sim/sim_platform.h"

#include <boost/test/unit_test.hpp>

#include "platform/platform.h"
#include "platform/sim/sim_test_util.h"

namespace vnvram::sim {
namespace {

using platform::OpenSimPlatform;
using platform::SimOptions;
using testing::TempDir;

BOOST_AUTO_TEST_CASE(PlatformReportsSimAndTheDomainItWasGiven) {
  TempDir dir;
  auto p = OpenSimPlatform(SimOptions{dir.path(), 7});
  BOOST_REQUIRE_MESSAGE(p.ok(), p.status().ToString());
  BOOST_CHECK_EQUAL((*p)->name(), "sim");
  BOOST_CHECK_EQUAL((*p)->self_domid(), 7);
}

BOOST_AUTO_TEST_CASE(PlatformSpecStringSelectsTheSimDirectoryAndDomain) {
  TempDir dir;
  auto p = platform::OpenPlatform("sim:" + dir.path() + ":2");
  BOOST_REQUIRE_MESSAGE(p.ok(), p.status().ToString());
  BOOST_CHECK_EQUAL((*p)->name(), "sim");
  BOOST_CHECK_EQUAL((*p)->self_domid(), 2);
}

BOOST_AUTO_TEST_CASE(BadOptionsAreRefused) {
  BOOST_CHECK(OpenSimPlatform(SimOptions{"", 1}).status().code() == Code::kInvalidArgument);
  TempDir dir;
  BOOST_CHECK(OpenSimPlatform(SimOptions{dir.path(), kDomIdFirstReserved}).status().code() ==
              Code::kInvalidArgument);
}

BOOST_AUTO_TEST_CASE(Dom0UsesTheSocketAndOtherDomainsTheirDomainSocket) {
  TempDir dir;
  auto dom0 = SimPlatform::Open(SimOptions{dir.path() + "/", 0});
  auto dom4 = SimPlatform::Open(SimOptions{dir.path(), 4});
  BOOST_REQUIRE(dom0.ok() && dom4.ok());
  BOOST_CHECK_EQUAL((*dom0)->XenStoreSocketPath(), dir.path() + "/socket");
  BOOST_CHECK_EQUAL((*dom4)->XenStoreSocketPath(), dir.path() + "/domain/4");
  // No sim xenstored runs here: opening fails with the path in the error.
  auto xs = (*dom4)->OpenXenStore();
  BOOST_REQUIRE(!xs.ok());
  BOOST_CHECK_NE(xs.status().message().find(dir.path() + "/domain/4"), std::string::npos);
}

BOOST_AUTO_TEST_CASE(HandlesFromTwoDomainPlatformsShareMemoryAndEvents) {
  TempDir dir;
  auto back = OpenSimPlatform(SimOptions{dir.path(), 0});
  auto front = OpenSimPlatform(SimOptions{dir.path(), 3});
  BOOST_REQUIRE(back.ok() && front.ok());
  auto sharer = (*back)->OpenGrantSharer();
  auto mapper = (*front)->OpenGrantMapper();
  auto bev = (*back)->OpenEventChannels();
  auto fev = (*front)->OpenEventChannels();
  BOOST_REQUIRE(sharer.ok() && mapper.ok() && bev.ok() && fev.ok());

  auto shared = (*sharer)->Share(3, 2, true);
  BOOST_REQUIRE(shared.ok());
  auto mapping = (*mapper)->Map(0, (*shared)->refs(), true);
  BOOST_REQUIRE_MESSAGE(mapping.ok(), mapping.status().ToString());
  (*mapping)->data()[5000] = std::byte{42};
  BOOST_CHECK((*shared)->data()[5000] == std::byte{42});

  auto port = (*bev)->BindUnbound(3);
  BOOST_REQUIRE(port.ok());
  auto fport = (*fev)->BindInterdomain(0, *port);
  BOOST_REQUIRE(fport.ok());
  BOOST_REQUIRE((*fev)->Notify(*fport).ok());
  const Deadline deadline(SystemClock::Instance(), testing::kTestDeadline);
  BOOST_REQUIRE(testing::WaitReadable((*bev)->Fd(), deadline));
  auto pending = (*bev)->Pending();
  BOOST_REQUIRE(pending.ok() && pending->has_value());
  BOOST_CHECK_EQUAL(**pending, *port);
}

}  // namespace
}  // namespace vnvram::sim
