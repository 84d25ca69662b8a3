#include "bench/bench_stats.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace vnvram::bench {

double Percentile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  const double rank = std::ceil(q * static_cast<double>(sorted.size()));
  const size_t i = rank < 1 ? 0 : static_cast<size_t>(rank) - 1;
  return sorted[std::min(i, sorted.size() - 1)];
}

Summary Samples::Summarize() {
  Summary s;
  if (us_.empty()) return s;
  if (!sorted_) std::sort(us_.begin(), us_.end());
  sorted_ = true;
  s.count = us_.size();
  s.p50 = Percentile(us_, 0.50);
  s.p99 = Percentile(us_, 0.99);
  s.p999 = Percentile(us_, 0.999);
  s.min = us_.front();
  s.max = us_.back();
  double sum = 0;
  for (double v : us_) sum += v;
  s.mean = sum / static_cast<double>(us_.size());
  return s;
}

std::vector<std::pair<double, double>> Samples::Cdf(size_t points) const {
  std::vector<std::pair<double, double>> out;
  if (us_.empty() || points < 2) return out;
  const size_t n = us_.size();
  // Evenly spaced ranks, plus the tail ranks that decide p99 and p99.9.
  for (size_t k = 0; k < points; ++k) {
    const size_t i = k * (n - 1) / (points - 1);
    out.emplace_back(us_[i], static_cast<double>(i + 1) / static_cast<double>(n));
  }
  return out;
}

std::string FormatMicros(double us) {
  char b[32];
  if (us < 1000) {
    std::snprintf(b, sizeof(b), "%.1f us", us);
  } else if (us < 1e6) {
    std::snprintf(b, sizeof(b), "%.2f ms", us / 1e3);
  } else {
    std::snprintf(b, sizeof(b), "%.2f s", us / 1e6);
  }
  return b;
}

std::string FormatRate(double per_second) {
  char b[32];
  if (per_second < 1e3) {
    std::snprintf(b, sizeof(b), "%.0f /s", per_second);
  } else if (per_second < 1e6) {
    std::snprintf(b, sizeof(b), "%.1f k/s", per_second / 1e3);
  } else {
    std::snprintf(b, sizeof(b), "%.2f M/s", per_second / 1e6);
  }
  return b;
}

std::string FormatBandwidth(double bytes_per_second) {
  char b[32];
  const double mib = bytes_per_second / (1024.0 * 1024.0);
  if (mib < 1024) {
    std::snprintf(b, sizeof(b), "%.1f MiB/s", mib);
  } else {
    std::snprintf(b, sizeof(b), "%.2f GiB/s", mib / 1024.0);
  }
  return b;
}

std::string FormatSize(uint64_t bytes) {
  static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB"};
  int u = 0;
  while (u < 3 && bytes >= 1024 && bytes % 1024 == 0) {
    bytes /= 1024;
    ++u;
  }
  return std::to_string(bytes) + " " + kUnits[u];
}

}  // namespace vnvram::bench
