#include "common/clock.h"

#include <time.h>

#include <limits>

namespace vnvram {

namespace {
Nanos Read(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return Nanos{static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec};
}
}  // namespace

Nanos SystemClock::Now() const {
  return Read(CLOCK_MONOTONIC);
}
Nanos SystemClock::WallNow() const {
  return Read(CLOCK_REALTIME);
}

SystemClock& SystemClock::Instance() {
  static SystemClock clock;
  return clock;
}

int Deadline::RemainingMillisForPoll() const {
  const int64_t ns = Remaining().count();
  const int64_t ms = (ns + 999'999) / 1'000'000;
  if (ms > std::numeric_limits<int>::max()) return std::numeric_limits<int>::max();
  return static_cast<int>(ms);
}

}  // namespace vnvram
