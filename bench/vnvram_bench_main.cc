// vnvram-bench: every figure of BRIEF §4 next to its baseline, measured in
// one run on this machine (issue 7). It starts a simulated cluster from the
// build's own binaries (vnvram-xenstored, vnvramd, nvram-tool), drives the
// volumes through libvnvram as a guest does, and prints one table, a JSON
// file and gnuplot PNGs. A figure that misses its target is reported as
// "not met"; the program fails only when it cannot measure.
//
//   vnvram-bench [--quick] [--out DIR] [--bin-dir DIR] [--only LIST]
//                [--run-ms N] [--failover-script PATH] [--failover-trials N]
//
// Sections (--only, comma-separated): baselines, persist, scale, memory,
// journal, failover. docs/benchmarks.md explains every line.
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/baselines.h"
#include "bench/journal_bench.h"
#include "bench/persist_bench.h"
#include "bench/report.h"
#include "bench/sim_cluster.h"
#include "common/log.h"
#include "common/parse.h"

namespace vnvram::bench {
namespace {

using std::chrono::milliseconds;

struct Options {
  bool quick = false;
  bool keep = false;
  std::string out;
  std::string bin_dir;
  std::set<std::string> only;
  milliseconds run{1000};  // per measured point
  std::string failover_script;
  int failover_trials = 20;
  bool Want(const std::string& s) const { return only.empty() || only.count(s) > 0; }
};

constexpr const char* kUsage =
    "usage: vnvram-bench [--quick] [--keep] [--out DIR] [--bin-dir DIR] [--only LIST] [--run-ms "
    "N]\n"
    "                    [--failover-script PATH] [--failover-trials N]\n"
    "  LIST: baselines,persist,scale,memory,journal,failover (default: all)\n";

void Progress(const std::string& what) {
  std::fprintf(stderr, "[vnvram-bench] %s\n", what.c_str());
  std::fflush(stderr);
}

Result<Options> ParseArgs(int argc, char** argv) {
  Options o;
  char self[4096];
  const ssize_t n = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n > 0) {
    self[n] = '\0';
    o.bin_dir = std::filesystem::path(self).parent_path().string();
  }
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> Result<std::string> {
      if (i + 1 >= argc) return Status::InvalidArgument(a + " needs a value");
      return std::string(argv[++i]);
    };
    if (a == "--quick") {
      o.quick = true;
    } else if (a == "--keep") {
      o.keep = true;
    } else if (a == "--out") {
      VNVRAM_ASSIGN_OR_RETURN(o.out, value());
    } else if (a == "--bin-dir") {
      VNVRAM_ASSIGN_OR_RETURN(o.bin_dir, value());
    } else if (a == "--failover-script") {
      VNVRAM_ASSIGN_OR_RETURN(o.failover_script, value());
    } else if (a == "--only") {
      VNVRAM_ASSIGN_OR_RETURN(const std::string list, value());
      std::stringstream ss(list);
      std::string s;
      while (std::getline(ss, s, ',')) {
        static const std::set<std::string> kKnown = {"baselines", "persist", "scale",
                                                     "memory",    "journal", "failover"};
        if (kKnown.count(s) == 0) {
          return Status::InvalidArgument("--only: unknown section '" + s + "'");
        }
        o.only.insert(s);
      }
    } else if (a == "--run-ms") {
      VNVRAM_ASSIGN_OR_RETURN(const std::string v, value());
      VNVRAM_ASSIGN_OR_RETURN(const uint64_t ms, ParseU64InRange(v, 50, 600000, "--run-ms"));
      o.run = milliseconds(ms);
    } else if (a == "--failover-trials") {
      VNVRAM_ASSIGN_OR_RETURN(const std::string v, value());
      VNVRAM_ASSIGN_OR_RETURN(const uint64_t t, ParseU64InRange(v, 1, 1000, "--failover-trials"));
      o.failover_trials = static_cast<int>(t);
    } else if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else {
      return Status::InvalidArgument("unknown option '" + a + "'");
    }
  }
  if (o.quick) {
    o.run = std::min(o.run, milliseconds(250));
    o.failover_trials = std::min(o.failover_trials, 5);
  }
  if (o.out.empty()) o.out = std::filesystem::path(o.bin_dir).parent_path() / "bench-results";
  return o;
}

ClusterSettings Settings(const Options& opt) {
  ClusterSettings s;
  s.keep = opt.keep;
  return s;
}

std::string UuidFor(int i) {
  char b[40];
  std::snprintf(b, sizeof(b), "0b3e6c2a-9d1f-4e2b-8c7a-%012x", i);
  return b;
}

ReportLine Figure(std::string section, std::string figure, double value, std::string unit,
                  std::string shown) {
  ReportLine l;
  l.section = std::move(section);
  l.figure = std::move(figure);
  l.value = value;
  l.unit = std::move(unit);
  l.shown = std::move(shown);
  return l;
}

// A latency (microseconds).
ReportLine Line(std::string section, std::string figure, double us) {
  return Figure(std::move(section), std::move(figure), us, "us", FormatMicros(us));
}

// A rate (operations per second).
ReportLine RateLine(std::string section, std::string figure, double ops) {
  return Figure(std::move(section), std::move(figure), ops, "ops/s", FormatRate(ops));
}

// A figure that was not measured, and why.
ReportLine NotMeasured(std::string section, std::string figure, std::string why) {
  ReportLine l = Figure(std::move(section), std::move(figure), 0, "", "-");
  l.note = std::move(why);
  return l;
}

// A size in bytes, shown in MiB with one decimal.
ReportLine BytesLine(std::string section, std::string figure, double bytes) {
  char b[32];
  std::snprintf(b, sizeof(b), "%.1f MiB", bytes / (1 << 20));
  return Figure(std::move(section), std::move(figure), bytes, "bytes", b);
}

void Against(ReportLine& l, std::string name, double value, std::string shown, Target t = {}) {
  l.baseline = std::move(name);
  l.baseline_value = value;
  l.baseline_shown = std::move(shown);
  l.target = t;
}

Target AtMost(double r) {
  return {Target::Kind::kAtMost, r};
}
Target AtLeast(double r) {
  return {Target::Kind::kAtLeast, r};
}

struct Baselines {
  std::map<size_t, Summary> zmq_rtt;  // by size: the faster way to wait
  std::map<size_t, Summary> tcp_rtt;
  std::map<std::pair<size_t, size_t>, double> zmq_pipelined;  // (size, window) -> frames/s
  Summary fdatasync;
  Summary evtchn;
  double memcpy_bw = 0;
  bool interleaved = false;  // the headline ratios were measured interleaved
};

constexpr size_t kSizes[] = {64, 4096, 65536};
constexpr size_t kDepths[] = {1, 4, 32, 64};

// The persist matrix's cluster: host a serves the guest; b and c are
// witnesses (vnvramd --replica-only), so 1 and 2 replicas cost one and two
// network round trips as they would across hosts.
struct MatrixConfig {
  std::string name;
  std::vector<std::string> replicas;
  std::string policy;
};
const std::vector<MatrixConfig>& Configs() {
  static const std::vector<MatrixConfig> configs = {
      {"local", {}, "sync"},
      {"1 replica sync", {"a", "b"}, "sync"},
      {"1 replica async", {"a", "b"}, "async"},
      {"2 replicas sync", {"a", "b", "c"}, "sync"},
      {"2 replicas async", {"a", "b", "c"}, "async"},
  };
  return configs;
}

Result<std::unique_ptr<Device>> OpenDevice(const std::string& platform, uint32_t devid) {
  OpenOptions o;
  o.platform = platform;
  o.devid = devid;
  o.timeout = std::chrono::seconds(30);
  return Device::Open(o);
}

Status RunBaselinesAndMatrix(const Options& opt, const std::string& work, Report& report,
                             Baselines& b) {
  std::vector<BenchVolume> volumes;
  int i = 0;
  for (const MatrixConfig& c : Configs()) {
    volumes.push_back({UuidFor(i++), "bench" + std::to_string(i), 16u << 20, c.replicas, c.policy});
  }
  Progress("starting the persist cluster: host a (vnvram-xenstored, vnvramd), witnesses b and c");
  VNVRAM_ASSIGN_OR_RETURN(
      auto cluster,
      BenchCluster::Start(opt.bin_dir, work + "/matrix", {{"a", true}, {"b", false}, {"c", false}},
                          volumes, Settings(opt)));
  const std::string platform = cluster->GuestPlatform("a");

  if (opt.Want("baselines")) {
    const milliseconds run = opt.run;
    Progress(
        "baselines: ZeroMQ and TCP round trips, pipelined ZeroMQ, fdatasync, memcpy, "
        "event channel");
    for (size_t size : kSizes) {
      VNVRAM_ASSIGN_OR_RETURN(Samples blocking, ZmqRoundTrip(size, run, false));
      VNVRAM_ASSIGN_OR_RETURN(Samples spinning, ZmqRoundTrip(size, run, true));
      const Summary sb = blocking.Summarize();
      const Summary ss = spinning.Summarize();
      b.zmq_rtt[size] = sb.p50 <= ss.p50 ? sb : ss;
      if (size == 4096)
        report.AddSeries("bare ZeroMQ round trip, 4 KiB", sb.p50 <= ss.p50 ? blocking : spinning);
      VNVRAM_ASSIGN_OR_RETURN(Samples tcp, TcpRoundTrip(size, run));
      b.tcp_rtt[size] = tcp.Summarize();
      if (size == 4096) report.AddSeries("raw TCP round trip, 4 KiB", tcp);
      for (size_t w : {size_t{32}, size_t{64}}) {
        VNVRAM_ASSIGN_OR_RETURN(const double ops, ZmqPipelined(size, w, run));
        b.zmq_pipelined[std::make_pair(size, w)] = ops;
      }
    }
    // On the disk of the output directory (the build tree), not on tmpfs.
    VNVRAM_ASSIGN_OR_RETURN(Samples sync, WriteFdatasync(opt.out, 4096, opt.quick ? 200 : 1000));
    b.fdatasync = sync.Summarize();
    report.AddSeries("pwrite + fdatasync, 4 KiB", sync);
    b.memcpy_bw = MemcpyBandwidth(64u << 20, run);
    // The faster of blocking at once and spinning first, as for ZeroMQ.
    VNVRAM_ASSIGN_OR_RETURN(Samples ev, SimEventChannelRoundTrip(cluster->SimDir("a"), run, false));
    VNVRAM_ASSIGN_OR_RETURN(Samples evs, SimEventChannelRoundTrip(cluster->SimDir("a"), run, true));
    const Summary eb = ev.Summarize();
    const Summary es = evs.Summarize();
    b.evtchn = eb.p50 <= es.p50 ? eb : es;
    report.AddSeries("sim event-channel round trip", eb.p50 <= es.p50 ? ev : evs);

    for (size_t size : kSizes) {
      ReportLine l = Line("baselines", "bare ZeroMQ round trip " + FormatSize(size) + " p50",
                          b.zmq_rtt[size].p50);
      report.Add(l);
      ReportLine t =
          Line("baselines", "raw TCP round trip " + FormatSize(size) + " p50", b.tcp_rtt[size].p50);
      report.Add(t);
      for (size_t w : {size_t{32}, size_t{64}}) {
        report.Add(
            RateLine("baselines",
                     "bare ZeroMQ pipelined " + FormatSize(size) + " window " + std::to_string(w),
                     b.zmq_pipelined[{size, w}]));
      }
    }
    report.Add(Line("baselines", "pwrite + fdatasync 4 KiB p50", b.fdatasync.p50));
    report.Add(Figure("baselines", "memcpy bandwidth (64 MiB buffers)", b.memcpy_bw, "bytes/s",
                      FormatBandwidth(b.memcpy_bw)));
    report.Add(Line("baselines", "sim event-channel round trip p50", b.evtchn.p50));
  }

  if (!opt.Want("persist")) return Status::Ok();
  for (size_t d = 0; d < volumes.size(); ++d) {
    VNVRAM_RETURN_IF_ERROR(cluster->Attach("a", static_cast<uint32_t>(d), volumes[d]));
  }
  std::vector<std::unique_ptr<Device>> devs;
  for (size_t d = 0; d < volumes.size(); ++d) {
    VNVRAM_ASSIGN_OR_RETURN(auto dev, OpenDevice(platform, static_cast<uint32_t>(d)));
    devs.push_back(std::move(dev));
  }
  for (size_t d = 0; d < volumes.size(); ++d) {
    for (size_t size : kSizes) {
      for (size_t qd : kDepths) {
        Progress("persist " + Configs()[d].name + ", " + FormatSize(size) + ", QD" +
                 std::to_string(qd));
        VNVRAM_ASSIGN_OR_RETURN(PersistPoint p,
                                MeasurePersist(*devs[d], Configs()[d].name, size, qd, opt.run));
        report.AddPoint(std::move(p));
      }
    }
  }
  // The headline latency ratios once more, interleaved: short rounds of the
  // figure and of its baseline alternate, so that a change in the machine's
  // load (large on a shared VM) moves both alike. These lines carry the
  // BRIEF §4 targets; the matrix's own points are shown beside them.
  if (opt.Want("baselines")) {
    Samples repl, zmq, local, ev;
    const milliseconds slice = std::max(milliseconds(50), opt.run / 2);
    for (int r = 0; r < 6; ++r) {
      Progress("interleaved round " + std::to_string(r + 1) + " of 6");
      VNVRAM_ASSIGN_OR_RETURN(PersistPoint p, MeasurePersist(*devs[1], "", 4096, 1, slice));
      repl.Merge(p.samples);
      VNVRAM_ASSIGN_OR_RETURN(Samples z, ZmqRoundTrip(4096, slice, /*spin=*/true));
      zmq.Merge(z);
      VNVRAM_ASSIGN_OR_RETURN(PersistPoint q, MeasurePersist(*devs[0], "", 4096, 1, slice));
      local.Merge(q.samples);
      VNVRAM_ASSIGN_OR_RETURN(Samples e, SimEventChannelRoundTrip(cluster->SimDir("a"), slice,
                                                                  /*spin=*/true));
      ev.Merge(e);
    }
    const Summary rs = repl.Summarize(), zs = zmq.Summarize(), ls = local.Summarize(),
                  es = ev.Summarize();
    ReportLine a =
        Line("headline (interleaved rounds)", "persist 4 KiB, 1 replica, QD1, p50", rs.p50);
    Against(a, "bare ZeroMQ round trip 4 KiB (spin-wait)", zs.p50, FormatMicros(zs.p50),
            AtMost(1.3));
    report.Add(a);
    ReportLine a99 = Line(a.section, "persist 4 KiB, 1 replica, QD1, p99", rs.p99);
    Against(a99, "bare ZeroMQ round trip 4 KiB p99", zs.p99, FormatMicros(zs.p99));
    report.Add(a99);
    if (b.fdatasync.count) {
      ReportLine f = Line(a.section, "persist 4 KiB, 1 replica, QD1, p50", rs.p50);
      Against(f, "pwrite + fdatasync 4 KiB", b.fdatasync.p50, FormatMicros(b.fdatasync.p50),
              AtMost(0.25));
      report.Add(f);
    }
    ReportLine c = Line(a.section, "persist 4 KiB, local only, QD1, p50", ls.p50);
    Against(c, "sim event-channel round trip (spin-wait)", es.p50, FormatMicros(es.p50),
            AtMost(2.0));
    report.Add(c);
    b.interleaved = true;
  }
  for (auto& dev : devs) (void)dev->close();

  // The BRIEF §4 lines.
  auto point = [&](const std::string& config, size_t size, size_t qd) -> const PersistPoint* {
    for (const PersistPoint& p : report.points()) {
      if (p.config == config && p.size == size && p.qd == qd) return &p;
    }
    return nullptr;
  };
  for (size_t size : kSizes) {
    const PersistPoint* r1 = point("1 replica sync", size, 1);
    ReportLine l =
        Line("persist", "persist " + FormatSize(size) + ", 1 replica, QD1, p50", r1->latency.p50);
    if (b.zmq_rtt.count(size)) {
      Against(l, "bare ZeroMQ round trip " + FormatSize(size), b.zmq_rtt[size].p50,
              FormatMicros(b.zmq_rtt[size].p50),
              size == 4096 && !b.interleaved ? AtMost(1.3) : Target{});
    }
    report.Add(l);
  }
  {
    const PersistPoint* r1 = point("1 replica sync", 4096, 1);
    ReportLine l = Line("persist", "persist 4 KiB, 1 replica, QD1, p50", r1->latency.p50);
    if (b.fdatasync.count) {
      Against(l, "pwrite + fdatasync 4 KiB", b.fdatasync.p50, FormatMicros(b.fdatasync.p50),
              b.interleaved ? Target{} : AtMost(0.25));
    }
    report.Add(l);
    ReportLine p99 = Line("persist", "persist 4 KiB, 1 replica, QD1, p99", r1->latency.p99);
    if (b.zmq_rtt.count(4096)) {
      Against(p99, "bare ZeroMQ round trip 4 KiB p99", b.zmq_rtt[4096].p99,
              FormatMicros(b.zmq_rtt[4096].p99));
    }
    report.Add(p99);
    report.Add(Line("persist", "persist 4 KiB, 1 replica, QD1, p99.9", r1->latency.p999));
  }
  for (size_t w : {size_t{32}, size_t{64}}) {
    const PersistPoint* p = point("1 replica sync", 65536, w);
    ReportLine l =
        RateLine("persist", "persist 64 KiB, 1 replica, QD" + std::to_string(w) + " throughput",
                 p->ops_per_s);
    if (b.zmq_pipelined.count({65536, w})) {
      const double base = b.zmq_pipelined[{65536, w}];
      Against(l, "bare ZeroMQ pipelined 64 KiB, window " + std::to_string(w), base,
              FormatRate(base), w == 32 ? AtLeast(0.7) : Target{});
    }
    report.Add(l);
  }
  for (size_t size : kSizes) {
    const PersistPoint* p = point("local", size, 1);
    ReportLine l =
        Line("persist", "persist " + FormatSize(size) + ", local only, QD1, p50", p->latency.p50);
    if (b.evtchn.count) {
      Against(l, "sim event-channel round trip", b.evtchn.p50, FormatMicros(b.evtchn.p50),
              b.interleaved ? Target{} : AtMost(2.0));
    }
    report.Add(l);
  }
  for (const char* c : {"1 replica async", "2 replicas sync", "2 replicas async"}) {
    const PersistPoint* p = point(c, 4096, 1);
    ReportLine l =
        Line("persist", std::string("persist 4 KiB, ") + c + ", QD1, p50", p->latency.p50);
    if (b.zmq_rtt.count(4096)) {
      Against(l, "bare ZeroMQ round trip 4 KiB", b.zmq_rtt[4096].p50,
              FormatMicros(b.zmq_rtt[4096].p50));
    }
    report.Add(l);
  }
  return Status::Ok();
}

// 100 volumes on three simulated hosts, each host's guests opening the
// volumes whose primary it is; every volume has one replica on the next
// host (sync). A guest opens at most kVolumesPerGuest devices: each device
// holds several xenstore watches, and a domain may hold 128 (xenstored's
// default quota).
Status RunScaleSection(const Options& opt, const std::string& work, Report& report) {
  const char* hosts[] = {"a", "b", "c"};
  const int kVolumes = 100;
  const int kVolumesPerGuest = 9;
  const uint32_t guests = (kVolumes / 3 + kVolumesPerGuest) / kVolumesPerGuest;
  std::vector<BenchVolume> volumes;
  volumes.reserve(kVolumes);
  for (int i = 0; i < kVolumes; ++i) {
    volumes.push_back({UuidFor(1000 + i),
                       "scale" + std::to_string(i),
                       1u << 20,
                       {hosts[i % 3], hosts[(i + 1) % 3]},
                       "sync"});
  }
  Progress("scale: starting three simulated hosts with 100 volumes");
  const std::vector<BenchHost> scale_hosts = {
      {"a", true, guests}, {"b", true, guests}, {"c", true, guests}};
  VNVRAM_ASSIGN_OR_RETURN(auto cluster, BenchCluster::Start(opt.bin_dir, work + "/scale",
                                                            scale_hosts, volumes, Settings(opt)));
  std::vector<ScaleVolume> open;
  for (int i = 0; i < kVolumes; ++i) {
    const std::string h = hosts[i % 3];
    const int on_host = i / 3;
    const auto guest = static_cast<uint32_t>(1 + on_host % guests);
    const auto devid = static_cast<uint32_t>(on_host / guests);
    VNVRAM_RETURN_IF_ERROR(cluster->Attach(h, devid, volumes[i], guest));
    open.push_back({cluster->GuestPlatform(h, guest), devid});
  }
  Progress("scale: 100 volumes, one thread each, 4 KiB persists at QD1");
  VNVRAM_ASSIGN_OR_RETURN(ScaleResult r, RunScale(open, 4096, opt.run * 2));
  const ReportLine agg = RateLine("scale (100 volumes, 3 hosts, 1 replica each)",
                                  "aggregate persist throughput, 4 KiB", r.aggregate_ops_per_s);
  report.Add(agg);
  report.Add(Line(agg.section, "per-volume p50: fastest volume", r.per_volume_p50.min));
  report.Add(Line(agg.section, "per-volume p50: median volume", r.per_volume_p50.p50));
  report.Add(Line(agg.section, "per-volume p50: slowest volume", r.per_volume_p50.max));
  report.Add(Line(agg.section, "slowest volume's p99", r.slowest_p99));
  report.Add(Line(agg.section, "all persists p99.9", r.all.p999));
  report.SetSection("scale", {{"volumes", r.volumes},
                              {"hosts", 3},
                              {"aggregate_ops_per_s", r.aggregate_ops_per_s},
                              {"per_volume_p50_us",
                               {{"min", r.per_volume_p50.min},
                                {"median", r.per_volume_p50.p50},
                                {"max", r.per_volume_p50.max}}},
                              {"slowest_volume_p99_us", r.slowest_p99},
                              {"all_p50_us", r.all.p50},
                              {"all_p999_us", r.all.p999}});
  return Status::Ok();
}

// Backend memory beyond the region. One volume of `size` replicated from
// host a to witness b, every byte written and persisted; then each
// vnvramd's resident memory from /proc/<pid>/smaps. The primary's granted
// region pages are recognised by their mapping; the witness's copy is the
// volume's size.
struct MemoryRun {
  uint64_t size = 0;
  MemoryUse primary, witness;
  uint64_t PrimaryBeyond() const {
    return primary.rss > primary.region_rss ? primary.rss - primary.region_rss : 0;
  }
  uint64_t WitnessBeyond() const { return witness.rss > size ? witness.rss - size : 0; }
};

Result<MemoryRun> MeasureMemory(const Options& opt, const std::string& work, uint64_t size) {
  std::vector<BenchVolume> volumes = {{UuidFor(2000), "memory", size, {"a", "b"}, "sync"}};
  Progress("memory: a " + FormatSize(size) + " volume, host a + witness b, filled");
  VNVRAM_ASSIGN_OR_RETURN(
      auto cluster,
      BenchCluster::Start(opt.bin_dir, work, {{"a", true}, {"b", false}}, volumes, Settings(opt)));
  VNVRAM_RETURN_IF_ERROR(cluster->Attach("a", 0, volumes[0]));
  VNVRAM_ASSIGN_OR_RETURN(auto dev, OpenDevice(cluster->GuestPlatform("a"), 0));
  const std::span<std::byte> region = dev->region();
  const size_t step = 64 << 10;
  for (uint64_t off = 0; off < size; off += step) {
    std::memset(region.data() + off, static_cast<int>((off / step) & 0xff), step);
    VNVRAM_RETURN_IF_ERROR(dev->persist_async(off, step));
    VNVRAM_RETURN_IF_ERROR(dev->drain_to(31));
  }
  VNVRAM_RETURN_IF_ERROR(dev->drain());
  MemoryRun r;
  r.size = size;
  VNVRAM_ASSIGN_OR_RETURN(r.primary, ReadMemoryUse(cluster->VnvramdPid("a")));
  VNVRAM_ASSIGN_OR_RETURN(r.witness, ReadMemoryUse(cluster->VnvramdPid("b")));
  (void)dev->close();
  return r;
}

// Two sizes, so the fixed cost of a daemon (code, threads, sockets) and the
// cost per byte of region come apart: the per-byte slope is the figure.
// The sim's grant table holds 32768 pages (Xen's default of 64 frames), so
// one backend domain grants at most 128 MiB of regions.
Status RunMemorySection(const Options& opt, const std::string& work, Report& report) {
  const uint64_t small = 32ull << 20;
  const uint64_t large = 96ull << 20;
  VNVRAM_ASSIGN_OR_RETURN(const MemoryRun s, MeasureMemory(opt, work + "/memory-s", small));
  VNVRAM_ASSIGN_OR_RETURN(const MemoryRun l, MeasureMemory(opt, work + "/memory-l", large));
  const std::string section = "backend memory beyond the regions";
  auto slope = [&](const std::string& who, uint64_t beyond_s, uint64_t beyond_l) {
    const double per_byte = (static_cast<double>(beyond_l) - static_cast<double>(beyond_s)) /
                            static_cast<double>(large - small);
    ReportLine x = BytesLine(section, who + ": resident beyond the region, per GiB",
                             std::max(0.0, per_byte) * static_cast<double>(1ull << 30));
    Against(x, "1 GiB of region", static_cast<double>(1ull << 30), "1024.0 MiB", AtMost(0.02));
    report.Add(x);
    report.Add(BytesLine(section, who + ": fixed part (" + FormatSize(small) + " volume)",
                         static_cast<double>(beyond_s) - per_byte * static_cast<double>(small)));
  };
  slope("primary vnvramd", s.PrimaryBeyond(), l.PrimaryBeyond());
  slope("witness vnvramd", s.WitnessBeyond(), l.WitnessBeyond());
  nlohmann::json runs = nlohmann::json::array();
  for (const MemoryRun* r : {&s, &l}) {
    runs.push_back({{"region_bytes", r->size},
                    {"primary_rss", r->primary.rss},
                    {"primary_region_rss", r->primary.region_rss},
                    {"witness_rss", r->witness.rss}});
  }
  report.SetSection("memory", runs);
  return Status::Ok();
}

// A journal filled on a replicated volume, its primary killed, a replica
// promoted; a new guest there replays it. Replay throughput against memcpy
// of the same bytes in the same mapping, measured right after.
Status RunJournalSection(const Options& opt, const std::string& work, Report& report) {
  const uint64_t size = opt.quick ? (16ull << 20) : (64ull << 20);
  const uint64_t payload = 4096;
  Progress("journal: a " + FormatSize(size) + " journal of 4 KiB records on replicas a, b, w; " +
           "a killed, b promoted, replayed there");
  VNVRAM_ASSIGN_OR_RETURN(const JournalReplayRun r,
                          MeasureJournalReplay(opt.bin_dir, work + "/journal", Settings(opt),
                                               UuidFor(3000), size, payload));
  const double bytes = static_cast<double>(r.log_bytes);
  const double copy_bw = bytes / (r.memcpy_us / 1e6);
  const std::string section = "journal";
  auto replay_line = [&](const std::string& figure, double us, bool judged) {
    const double bw = bytes / (us / 1e6);
    ReportLine l = Figure(section, figure, bw, "bytes/s", FormatBandwidth(bw));
    Against(l, "memcpy of the same bytes", copy_bw, FormatBandwidth(copy_bw),
            judged ? AtLeast(0.3) : Target{});
    report.Add(l);
  };
  replay_line("replay after failover (" + std::to_string(r.records) + " x 4 KiB)",
              r.first_replay_us, true);
  replay_line("replay again, same mapping (median of 5)", r.warm_replay_us, false);
  report.Add(Line(section, "replay after failover, duration", r.first_replay_us));
  report.Add(Figure(section, "kill -9 of the primary -> promote done", r.promote_ms, "ms",
                    FormatMicros(r.promote_ms * 1000)));
  report.SetSection("journal", {{"region_bytes", r.region_bytes},
                                {"records", r.records},
                                {"record_payload", r.record_payload},
                                {"log_bytes", r.log_bytes},
                                {"promote_ms", r.promote_ms},
                                {"first_replay_us", r.first_replay_us},
                                {"warm_replay_us", r.warm_replay_us},
                                {"memcpy_us", r.memcpy_us}});
  return Status::Ok();
}

// bench/failover-bench.sh, whose JSON gives the figure.
Status RunFailoverSection(const Options& opt, Report& report) {
  if (opt.failover_script.empty()) {
    report.Add(NotMeasured("failover", "kill -9 -> first persist acked, p50",
                           "not run: no --failover-script"));
    return Status::Ok();
  }
  const std::string json = opt.out + "/failover.json";
  const std::string log = opt.out + "/failover.log";
  Progress("failover: " + std::to_string(opt.failover_trials) + " trials of kill -9 (log: " + log +
           ")");
  const std::string cmd = "'" + opt.failover_script + "' '" + opt.bin_dir + "' --trials " +
                          std::to_string(opt.failover_trials) + " --json '" + json + "' >'" + log +
                          "' 2>&1";
  const int rc = std::system(cmd.c_str());
  if (rc != 0) return Status::Internal("the failover benchmark failed; see " + log);
  std::ifstream in(json);
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded()) return Status::Corruption("cannot parse " + json);
  const double p50 = j["kill_to_first_ack_us"]["p50"].get<double>();
  ReportLine l = Line(
      "failover",
      "kill -9 -> first persist acked, p50 (" + std::to_string(j["trials"].get<int>()) + " trials)",
      p50);
  Against(l, "target (BRIEF §4)", 100000, "100 ms", AtMost(1.0));
  report.Add(l);
  report.Add(Line("failover", "kill -9 -> first persist acked, p90",
                  j["kill_to_first_ack_us"]["p90"].get<double>()));
  report.SetSection("failover", j);
  return Status::Ok();
}

std::string Machine() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  std::string model;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      model = line.substr(line.find(':') + 2);
      break;
    }
  }
  return std::to_string(std::thread::hardware_concurrency()) + " CPUs, " + model;
}

int Main(int argc, char** argv) {
  auto parsed = ParseArgs(argc, argv);
  if (!parsed.ok()) {
    std::fprintf(stderr, "vnvram-bench: %s\n%s", parsed.status().message().c_str(), kUsage);
    return 2;
  }
  const Options opt = std::move(parsed).value();
  log::Init("vnvram-bench", log::Level::kWarn);
  std::filesystem::create_directories(opt.out);
  // The sim's grant pages are files under the simulation's directory: on
  // tmpfs they are plain memory, as gntalloc's pages are on Xen; on a disk
  // the kernel would write them back and fault on the next store.
  const std::string work = std::string(::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp") +
                           "/vnvram-bench." + std::to_string(::getpid());
  const auto started = BenchClock::now();
  Report report;
  Baselines b;
  utsname u{};
  ::uname(&u);
  double load[3] = {0, 0, 0};
  ::getloadavg(load, 3);
  report.SetMeta({{"machine", Machine()},
                  {"kernel", std::string(u.release)},
                  {"loadavg_at_start", load[0]},
                  {"quick", opt.quick},
                  {"run_ms_per_point", opt.run.count()}});
  Status s = Status::Ok();
  if (opt.Want("baselines") || opt.Want("persist")) s = RunBaselinesAndMatrix(opt, work, report, b);
  if (s.ok() && opt.Want("scale")) s = RunScaleSection(opt, work, report);
  if (s.ok() && opt.Want("memory")) s = RunMemorySection(opt, work, report);
  if (s.ok() && opt.Want("journal")) s = RunJournalSection(opt, work, report);
  if (s.ok() && opt.Want("failover")) s = RunFailoverSection(opt, report);
  std::error_code ec;
  if (opt.keep) {
    std::fprintf(stderr, "[vnvram-bench] kept the work directory (logs): %s\n", work.c_str());
  } else {
    std::filesystem::remove_all(work, ec);
  }
  if (!s.ok()) {
    std::fprintf(stderr, "vnvram-bench: %s\n", s.ToString().c_str());
    return 1;
  }
  std::printf("\nvnvram-bench on %s (%s)%s\n\n", Machine().c_str(), u.release,
              opt.quick ? ", QUICK: short runs, 5 failover trials" : "");
  report.PrintTable(stdout);
  if (!report.points().empty()) {
    std::printf("\n");
    report.PrintMatrix(stdout);
  }
  const std::string json = opt.out + "/vnvram-bench.json";
  if (Status w = report.WriteJson(json); !w.ok()) {
    std::fprintf(stderr, "vnvram-bench: %s\n", w.ToString().c_str());
    return 1;
  }
  std::printf("\nresults: %s\n", json.c_str());
  auto pngs = report.WritePlots(opt.out + "/plots");
  if (pngs.ok()) {
    for (const std::string& p : *pngs) std::printf("plot:    %s\n", p.c_str());
  } else {
    std::printf("plots:   %s\n", pngs.status().message().c_str());
  }
  std::printf("took %.0f s\n", MicrosSince(started) / 1e6);
  return 0;
}

}  // namespace
}  // namespace vnvram::bench

int main(int argc, char** argv) {
  try {
    return vnvram::bench::Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vnvram-bench: %s\n", e.what());
  }
  return 1;
}
