#include "common/clock.h"

#include <boost/test/unit_test.hpp>

namespace vnvram {
namespace {

using std::chrono::milliseconds;

BOOST_AUTO_TEST_SUITE(ClockTest)

BOOST_AUTO_TEST_CASE(SystemClockIsMonotonic) {
  const Nanos a = SystemClock::Instance().Now();
  const Nanos b = SystemClock::Instance().Now();
  BOOST_TEST(b.count() >= a.count());
  BOOST_TEST(SystemClock::Instance().WallNow().count() > 0);
}

BOOST_AUTO_TEST_CASE(ManualClockMovesOnlyWhenAdvanced) {
  ManualClock clock;
  const Nanos t0 = clock.Now();
  BOOST_TEST(clock.Now() == t0);
  clock.Advance(milliseconds(5));
  BOOST_TEST((clock.Now() - t0) == Nanos(milliseconds(5)));
}

BOOST_AUTO_TEST_CASE(DeadlineExpiresUnderManualTime) {
  ManualClock clock;
  Deadline d(clock, milliseconds(100));
  BOOST_TEST(!d.Expired());
  BOOST_TEST(d.RemainingMillisForPoll() == 100);
  clock.Advance(std::chrono::microseconds(99'500));
  BOOST_TEST(d.RemainingMillisForPoll() == 1);  // rounds up, never 0 early
  clock.Advance(milliseconds(1));
  BOOST_TEST(d.Expired());
  BOOST_TEST(d.RemainingMillisForPoll() == 0);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace vnvram
