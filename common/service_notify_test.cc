#include "common/service_notify.h"

#include <stdlib.h>

#include <boost/test/unit_test.hpp>

#include "tests/notify_listener.h"

namespace vnvram::service {
namespace {

using std::chrono::milliseconds;
constexpr milliseconds kWait{5000};

BOOST_AUTO_TEST_SUITE(ServiceNotifyTest)

BOOST_AUTO_TEST_CASE(SendsReadyStatusAndStoppingToNotifySocket) {
  auto l = testing::NotifyListener::Create();
  BOOST_TEST_REQUIRE(l.ok(), l.status().ToString());
  BOOST_TEST_REQUIRE(::setenv("NOTIFY_SOCKET", (*l)->path().c_str(), 1) == 0);
  BOOST_TEST_REQUIRE(NotifyReady("serving 2 devices").ok());
  BOOST_TEST_REQUIRE(NotifyStatus("two\nlines").ok());
  BOOST_TEST_REQUIRE(NotifyReloading().ok());
  BOOST_TEST_REQUIRE(NotifyStopping().ok());
  ::unsetenv("NOTIFY_SOCKET");

  auto m = (*l)->Next(kWait);
  BOOST_TEST_REQUIRE(m.ok(), m.status().ToString());
  BOOST_TEST(*m == "READY=1\nSTATUS=serving 2 devices");
  m = (*l)->Next(kWait);
  BOOST_TEST_REQUIRE(m.ok(), m.status().ToString());
  BOOST_TEST(*m == "STATUS=two lines");  // a newline would start another assignment
  m = (*l)->Next(kWait);
  BOOST_TEST_REQUIRE(m.ok(), m.status().ToString());
  BOOST_TEST(*m == "RELOADING=1\nSTATUS=reloading");
  m = (*l)->Next(kWait);
  BOOST_TEST_REQUIRE(m.ok(), m.status().ToString());
  BOOST_TEST(*m == "STOPPING=1\nSTATUS=stopping");
}

BOOST_AUTO_TEST_CASE(NoOpWithoutNotifySocket) {
  auto l = testing::NotifyListener::Create();
  BOOST_TEST_REQUIRE(l.ok(), l.status().ToString());
  ::unsetenv("NOTIFY_SOCKET");
  BOOST_TEST(NotifyReady("x").ok());
  BOOST_TEST(NotifyStopping().ok());
  // Nothing was sent anywhere: the listener sees no message.
  auto m = (*l)->Next(milliseconds(0));
  BOOST_TEST((m.status().code() == Code::kTimeout), m.status().ToString());
}

BOOST_AUTO_TEST_CASE(UnreachableSocketIsAnError) {
  BOOST_TEST_REQUIRE(::setenv("NOTIFY_SOCKET", "/nonexistent-vnvram-dir/notify", 1) == 0);
  Status s = NotifyReady("x");
  ::unsetenv("NOTIFY_SOCKET");
  BOOST_TEST(!s.ok());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace vnvram::service
