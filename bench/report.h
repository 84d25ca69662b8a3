// Report: the lines vnvram-bench prints as one table (each figure with its
// baseline, ratio and target, "met" / "not met" and never a failure), the
// JSON file with every line and the raw series, and the gnuplot PNGs
// (latency CDFs, throughput against queue depth). Not thread-safe.
#pragma once

#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "bench/persist_bench.h"
#include "common/result.h"

namespace vnvram::bench {

struct Target {
  enum class Kind { kNone, kAtMost, kAtLeast } kind = Kind::kNone;
  double ratio = 0;  // figure / baseline
};

struct ReportLine {
  std::string section;
  std::string figure;
  double value = 0;      // in `unit`
  std::string unit;      // "us", "ops/s", "bytes/s", "fraction", "ms"
  std::string shown;     // value as printed
  std::string baseline;  // what it is compared with ("" when nothing)
  double baseline_value = 0;
  std::string baseline_shown;
  Target target;
  std::string note;  // e.g. why a figure is missing
  std::optional<double> Ratio() const;
  std::string Verdict() const;  // "met", "not met", ""
};

class Report {
 public:
  void Add(ReportLine line) { lines_.push_back(std::move(line)); }
  void AddPoint(PersistPoint p) { points_.push_back(std::move(p)); }
  void AddSeries(const std::string& name, Samples s) { series_.emplace_back(name, std::move(s)); }
  void SetMeta(nlohmann::json meta) { meta_ = std::move(meta); }
  void SetSection(const std::string& name, nlohmann::json j) { extra_[name] = std::move(j); }
  const std::vector<PersistPoint>& points() const { return points_; }

  void PrintTable(std::FILE* out) const;
  // The persist matrix as a compact grid (ops/s by queue depth).
  void PrintMatrix(std::FILE* out) const;
  Status WriteJson(const std::string& path) const;
  // Writes DIR/*.dat and DIR/plots.gp, runs gnuplot; the PNG paths, or
  // kNotFound when gnuplot is not installed.
  Result<std::vector<std::string>> WritePlots(const std::string& dir) const;

 private:
  std::vector<ReportLine> lines_;
  std::vector<PersistPoint> points_;
  std::vector<std::pair<std::string, Samples>> series_;
  nlohmann::json meta_;
  nlohmann::json extra_ = nlohmann::json::object();
};

}  // namespace vnvram::bench
