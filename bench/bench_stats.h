// Samples and their summary for vnvram-bench: latencies in microseconds,
// nearest-rank percentiles (p50, p99, p99.9), and a CDF thinned for
// plotting. Plain values; not thread-safe (one Samples per thread, merged
// afterwards).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace vnvram::bench {

using BenchClock = std::chrono::steady_clock;

inline double MicrosSince(BenchClock::time_point t0) {
  return std::chrono::duration<double, std::micro>(BenchClock::now() - t0).count();
}

struct Summary {
  uint64_t count = 0;
  double p50 = 0, p99 = 0, p999 = 0, mean = 0, min = 0, max = 0;  // microseconds
};

class Samples {
 public:
  void Reserve(size_t n) { us_.reserve(n); }
  void Add(double us) { us_.push_back(us); }
  void Merge(const Samples& o) { us_.insert(us_.end(), o.us_.begin(), o.us_.end()); }
  size_t size() const { return us_.size(); }
  bool empty() const { return us_.empty(); }
  // Sorts in place; call once the run is over.
  Summary Summarize();
  // At most `points` (latency, fraction <= latency) pairs, after Summarize().
  std::vector<std::pair<double, double>> Cdf(size_t points = 200) const;

 private:
  std::vector<double> us_;
  bool sorted_ = false;
};

// Nearest-rank percentile of sorted values (q in [0, 1]).
double Percentile(const std::vector<double>& sorted, double q);

// "12.3 us", "4.56 ms", "1.20 s".
std::string FormatMicros(double us);
// "812 k/s", "1.20 M/s".
std::string FormatRate(double per_second);
// "3.1 GiB/s", "812 MiB/s".
std::string FormatBandwidth(double bytes_per_second);
// "64 B", "4 KiB", "64 KiB", "1 GiB".
std::string FormatSize(uint64_t bytes);

}  // namespace vnvram::bench
