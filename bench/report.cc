#include "bench/report.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>

namespace vnvram::bench {

std::optional<double> ReportLine::Ratio() const {
  if (baseline.empty() || baseline_value <= 0 || value < 0) return std::nullopt;
  return value / baseline_value;
}

std::string ReportLine::Verdict() const {
  const std::optional<double> r = Ratio();
  if (!r || target.kind == Target::Kind::kNone) return "";
  const bool met = target.kind == Target::Kind::kAtMost ? *r <= target.ratio : *r >= target.ratio;
  return met ? "met" : "not met";
}

namespace {

std::string TargetText(const Target& t) {
  if (t.kind == Target::Kind::kNone) return "";
  char b[32];
  std::snprintf(b, sizeof(b), "%s %.2gx", t.kind == Target::Kind::kAtMost ? "<=" : ">=", t.ratio);
  return b;
}

// Distinct colours for up to ten curves (gnuplot's default cycle has eight).
constexpr const char* kColors[] = {"#9400d3", "#009e73", "#56b4e9", "#e69f00", "#d4c000",
                                   "#0072b2", "#e51e10", "#000000", "#8b4513", "#ff69b4"};

std::string Fit(std::string s, size_t w) {
  if (s.size() > w) s = s.substr(0, w - 1) + "~";
  return s;
}

}  // namespace

void Report::PrintTable(std::FILE* out) const {
  std::string section;
  std::fprintf(out, "%-44s %12s  %-34s %12s %8s %-8s %s\n", "figure", "value",
               "baseline (same run)", "baseline", "ratio", "target", "");
  for (const ReportLine& l : lines_) {
    if (l.section != section) {
      section = l.section;
      std::fprintf(out, "-- %s\n", section.c_str());
    }
    const std::optional<double> r = l.Ratio();
    char ratio[32] = "";
    if (r) std::snprintf(ratio, sizeof(ratio), "%.2fx", *r);
    std::fprintf(out, "%-44s %12s  %-34s %12s %8s %-8s %s%s%s\n", Fit(l.figure, 44).c_str(),
                 l.shown.c_str(), Fit(l.baseline, 34).c_str(), l.baseline_shown.c_str(), ratio,
                 TargetText(l.target).c_str(), l.Verdict().c_str(),
                 l.note.empty() || l.Verdict().empty() ? "" : "; ", l.note.c_str());
  }
}

void Report::PrintMatrix(std::FILE* out) const {
  std::set<size_t> qds;
  std::vector<std::pair<std::string, size_t>> rows;
  std::map<std::pair<std::string, size_t>, std::map<size_t, const PersistPoint*>> grid;
  for (const PersistPoint& p : points_) {
    qds.insert(p.qd);
    const auto key = std::make_pair(p.config, p.size);
    if (grid.find(key) == grid.end()) rows.push_back(key);
    grid[key][p.qd] = &p;
  }
  std::fprintf(out, "%-18s %7s %9s %9s %9s |", "persist", "size", "QD1 p50", "p99", "p99.9");
  for (size_t q : qds) std::fprintf(out, " %10s", ("QD" + std::to_string(q) + " ops/s").c_str());
  std::fprintf(out, "\n");
  for (const auto& key : rows) {
    const auto& byqd = grid[key];
    const PersistPoint* q1 = byqd.count(1) ? byqd.at(1) : nullptr;
    std::fprintf(out, "%-18s %7s %9s %9s %9s |", key.first.c_str(), FormatSize(key.second).c_str(),
                 q1 ? FormatMicros(q1->latency.p50).c_str() : "-",
                 q1 ? FormatMicros(q1->latency.p99).c_str() : "-",
                 q1 ? FormatMicros(q1->latency.p999).c_str() : "-");
    for (size_t q : qds) {
      auto it = byqd.find(q);
      std::fprintf(out, " %10s",
                   it == byqd.end() ? "-" : FormatRate(it->second->ops_per_s).c_str());
    }
    std::fprintf(out, "\n");
  }
}

Status Report::WriteJson(const std::string& path) const {
  nlohmann::json j;
  j["meta"] = meta_;
  j["lines"] = nlohmann::json::array();
  for (const ReportLine& l : lines_) {
    nlohmann::json x = {{"section", l.section},
                        {"figure", l.figure},
                        {"value", l.value},
                        {"unit", l.unit},
                        {"shown", l.shown}};
    if (!l.baseline.empty()) {
      x["baseline"] = l.baseline;
      x["baseline_value"] = l.baseline_value;
    }
    if (auto r = l.Ratio()) x["ratio"] = *r;
    if (l.target.kind != Target::Kind::kNone) {
      x["target"] = TargetText(l.target);
      x["verdict"] = l.Verdict();
    }
    if (!l.note.empty()) x["note"] = l.note;
    j["lines"].push_back(std::move(x));
  }
  j["persist_matrix"] = nlohmann::json::array();
  for (const PersistPoint& p : points_) {
    nlohmann::json x = {{"config", p.config},
                        {"size", p.size},
                        {"qd", p.qd},
                        {"ops_per_s", p.ops_per_s},
                        {"bytes_per_s", p.ops_per_s * static_cast<double>(p.size)}};
    if (p.qd == 1) {
      x["latency_us"] = {{"p50", p.latency.p50},    {"p99", p.latency.p99},
                         {"p99.9", p.latency.p999}, {"mean", p.latency.mean},
                         {"max", p.latency.max},    {"count", p.latency.count}};
    } else {
      // Little's law: the mean time a record spends queued and in flight.
      x["mean_latency_us"] = p.ops_per_s > 0 ? 1e6 * static_cast<double>(p.qd) / p.ops_per_s : 0;
    }
    j["persist_matrix"].push_back(std::move(x));
  }
  for (const auto& [k, v] : extra_.items()) j[k] = v;
  std::ofstream f(path);
  f << j.dump(2) << "\n";
  if (!f) return Status::IoError("write " + path);
  return Status::Ok();
}

Result<std::vector<std::string>> Report::WritePlots(const std::string& dir) const {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  // Latency CDFs: every QD1 series at 4 KiB, and the baselines.
  std::vector<std::pair<std::string, std::string>> cdfs;  // title, file
  int k = 0;
  auto write_cdf = [&](const std::string& title, const Samples& s) {
    const std::string file = dir + "/cdf-" + std::to_string(k++) + ".dat";
    std::ofstream f(file);
    for (const auto& [us, frac] : s.Cdf(400)) f << us << " " << frac << "\n";
    cdfs.emplace_back(title, file);
  };
  for (const PersistPoint& p : points_) {
    if (p.qd == 1 && p.size == 4096 && !p.samples.empty()) {
      write_cdf("persist 4 KiB, " + p.config, p.samples);
    }
  }
  const size_t product_cdfs = cdfs.size();  // then the baselines, dashed
  for (const auto& [name, s] : series_) write_cdf(name, s);
  // Throughput against queue depth: one plot per size, a curve per config.
  std::map<size_t, std::map<std::string, std::vector<const PersistPoint*>>> curves;
  for (const PersistPoint& p : points_) curves[p.size][p.config].push_back(&p);
  std::vector<std::pair<size_t, std::vector<std::pair<std::string, std::string>>>> tput;
  int t = 0;
  for (auto& [size, by_config] : curves) {
    auto& files = tput.emplace_back(size, std::vector<std::pair<std::string, std::string>>{});
    for (auto& [name, pts] : by_config) {
      std::sort(pts.begin(), pts.end(),
                [](const PersistPoint* a, const PersistPoint* b) { return a->qd < b->qd; });
      const std::string file = dir + "/qd-" + std::to_string(t++) + ".dat";
      std::ofstream f(file);
      for (const PersistPoint* p : pts) f << p->qd << " " << p->ops_per_s << "\n";
      files.second.emplace_back(name, file);
    }
  }
  if (cdfs.empty() && tput.empty()) return std::vector<std::string>{};
  const std::string gp = dir + "/plots.gp";
  std::ofstream g(gp);
  g << "set terminal pngcairo size 1100,700 noenhanced\nset grid\nset key bottom right\n";
  if (!cdfs.empty()) {
    g << "set output '" << dir << "/latency-cdf.png'\n";
    g << "set title 'vnvram persist latency at QD1 (4 KiB) and baselines, same run'\n";
    g << "set xlabel 'latency (us, log scale)'\nset ylabel 'fraction of requests'\n";
    g << "set logscale x\nset yrange [0:1]\nplot ";
    for (size_t i = 0; i < cdfs.size(); ++i) {
      g << (i ? ", " : "") << "'" << cdfs[i].second << "' using 1:2 with lines lw 2 lc rgb '"
        << kColors[i % std::size(kColors)] << "'" << (i >= product_cdfs ? " dt 2" : "")
        << " title '" << cdfs[i].first << "'";
    }
    g << "\n";
  }
  g << "unset logscale x\nset yrange [*:*]\nset key top left\n";
  g << "set xlabel 'queue depth (log scale)'\nset ylabel 'persists per second (log scale)'\n";
  g << "set logscale xy\nset xtics (1, 4, 32, 64)\n";
  std::vector<std::string> pngs;
  if (!cdfs.empty()) pngs.push_back(dir + "/latency-cdf.png");
  for (const auto& [size, files] : tput) {
    const std::string png = dir + "/throughput-qd-" + std::to_string(size) + ".png";
    pngs.push_back(png);
    g << "set output '" << png << "'\n";
    g << "set title 'vnvram persist throughput against queue depth, " << FormatSize(size)
      << " persists'\n";
    g << "plot ";
    for (size_t i = 0; i < files.size(); ++i) {
      g << (i ? ", " : "") << "'" << files[i].second << "' using 1:2 with linespoints lw 2 title '"
        << files[i].first << "'";
    }
    g << "\n";
  }
  g.close();
  if (::access("/usr/bin/gnuplot", X_OK) != 0) {
    return Status::NotFound(
        "gnuplot is not installed (apt-get install gnuplot-nox); the data is in " + dir);
  }
  const std::string cmd = "/usr/bin/gnuplot '" + gp + "' 2>&1";
  const int rc = std::system(cmd.c_str());
  if (rc != 0)
    return Status::Internal("gnuplot " + gp + " failed (exit " + std::to_string(rc) + ")");
  return pngs;
}

}  // namespace vnvram::bench
