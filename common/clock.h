// Clock: the one source of time for timeouts, heartbeats and statistics, so
// tests drive time instead of sleeping. SystemClock is thread-safe and
// stateless; ManualClock is thread-safe (an atomic), advanced by the test.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace vnvram {

using Nanos = std::chrono::nanoseconds;

class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic time since an arbitrary epoch.
  virtual Nanos Now() const = 0;
  // Wall-clock time since the Unix epoch (for timestamps operators read).
  virtual Nanos WallNow() const = 0;
};

// CLOCK_MONOTONIC and CLOCK_REALTIME.
class SystemClock final : public Clock {
 public:
  Nanos Now() const override;
  Nanos WallNow() const override;
  // A process-wide instance for code that is handed no clock.
  static SystemClock& Instance();
};

// Time moves only when the test says so.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(Nanos start = Nanos{1'000'000'000}) : now_(start.count()) {}
  Nanos Now() const override { return Nanos{now_.load(std::memory_order_acquire)}; }
  Nanos WallNow() const override { return Now(); }
  void Advance(Nanos d) { now_.fetch_add(d.count(), std::memory_order_acq_rel); }
  void Set(Nanos t) { now_.store(t.count(), std::memory_order_release); }

 private:
  std::atomic<int64_t> now_;
};

// A point in time after which an operation gives up.
class Deadline {
 public:
  Deadline(const Clock& clock, Nanos budget) : clock_(&clock), end_(clock.Now() + budget) {}
  bool Expired() const { return clock_->Now() >= end_; }
  Nanos Remaining() const {
    const Nanos left = end_ - clock_->Now();
    return left.count() > 0 ? left : Nanos{0};
  }
  // Remaining time in whole milliseconds for poll(2), rounded up.
  int RemainingMillisForPoll() const;

 private:
  const Clock* clock_;
  Nanos end_;
};

}  // namespace vnvram
