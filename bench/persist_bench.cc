#include "bench/persist_bench.h"

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

namespace vnvram::bench {

Result<PersistPoint> MeasurePersist(Device& dev, std::string config, size_t size, size_t qd,
                                    std::chrono::milliseconds run) {
  PersistPoint pt;
  pt.config = std::move(config);
  pt.size = size;
  pt.qd = qd;
  const std::span<std::byte> region = dev.region();
  if (region.size() < size * 2) return Status::InvalidArgument("region too small for the size");
  const uint64_t slots = region.size() / size;
  uint64_t n = 0;
  auto store = [&](uint64_t i) {
    const uint64_t off = (i % slots) * size;
    std::memset(region.data() + off, static_cast<int>(i & 0xff), size);
    return off;
  };
  auto one = [&](uint64_t i) -> Status {
    const uint64_t off = store(i);
    const auto t0 = BenchClock::now();
    Status s = qd == 1 ? dev.persist(off, size) : dev.persist_async(off, size);
    if (s.ok() && qd > 1) s = dev.drain_to(qd - 1);
    pt.samples.Add(MicrosSince(t0));
    return s;
  };
  for (uint64_t w = 0; w < std::max<size_t>(100, qd * 4); ++w) VNVRAM_RETURN_IF_ERROR(one(n++));
  VNVRAM_RETURN_IF_ERROR(dev.drain());
  pt.samples = Samples();
  const auto t0 = BenchClock::now();
  const auto end = t0 + run;
  uint64_t done = 0;
  while (BenchClock::now() < end) {
    VNVRAM_RETURN_IF_ERROR(one(n++));
    ++done;
  }
  VNVRAM_RETURN_IF_ERROR(dev.drain());
  pt.ops_per_s = static_cast<double>(done) / (MicrosSince(t0) / 1e6);
  pt.latency = pt.samples.Summarize();
  if (qd > 1) pt.samples = Samples();  // per-call times at QD > 1 are not latencies
  return pt;
}

Result<ScaleResult> RunScale(const std::vector<ScaleVolume>& volumes, size_t size,
                             std::chrono::milliseconds run) {
  std::vector<std::unique_ptr<Device>> devs;
  for (const ScaleVolume& v : volumes) {
    OpenOptions o;
    o.platform = v.platform;
    o.devid = v.devid;
    o.timeout = std::chrono::seconds(30);
    auto d = Device::Open(o);
    if (!d.ok()) {
      return Status(d.status().code(), "open " + v.platform + " device " + std::to_string(v.devid) +
                                           ": " + d.status().message());
    }
    devs.push_back(std::move(d).value());
  }
  std::vector<Samples> per(devs.size());
  std::vector<Status> errors(devs.size(), Status::Ok());
  std::mutex mu;
  std::condition_variable cv;
  size_t ready = 0;
  bool go = false;
  BenchClock::time_point end;
  std::vector<std::thread> threads;
  for (size_t i = 0; i < devs.size(); ++i) {
    threads.emplace_back([&, i] {
      Device& d = *devs[i];
      const std::span<std::byte> region = d.region();
      const uint64_t slots = region.size() / size;
      uint64_t n = 0;
      for (int w = 0; w < 20 && errors[i].ok(); ++w, ++n)
        errors[i] = d.persist((n % slots) * size, size);
      {
        std::unique_lock lock(mu);
        ++ready;
        cv.notify_all();
        cv.wait(lock, [&] { return go; });
      }
      while (errors[i].ok() && BenchClock::now() < end) {
        const uint64_t off = (n++ % slots) * size;
        std::memset(region.data() + off, static_cast<int>(n & 0xff), size);
        const auto t0 = BenchClock::now();
        errors[i] = d.persist(off, size);
        per[i].Add(MicrosSince(t0));
      }
    });
  }
  const auto t0 = BenchClock::now();
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return ready == devs.size(); });
    end = BenchClock::now() + run;
    go = true;
    cv.notify_all();
  }
  const auto started = BenchClock::now();
  for (auto& t : threads) t.join();
  (void)t0;
  const double secs = MicrosSince(started) / 1e6;
  for (size_t i = 0; i < errors.size(); ++i) {
    if (!errors[i].ok()) {
      return Status(errors[i].code(), "volume " + std::to_string(i) + ": " + errors[i].message());
    }
  }
  ScaleResult r;
  r.volumes = devs.size();
  Samples p50s, all;
  uint64_t total = 0;
  for (Samples& s : per) {
    total += s.size();
    all.Merge(s);
    const Summary v = s.Summarize();
    p50s.Add(v.p50);
    r.slowest_p99 = std::max(r.slowest_p99, v.p99);
  }
  r.aggregate_ops_per_s = static_cast<double>(total) / secs;
  r.per_volume_p50 = p50s.Summarize();
  r.all = all.Summarize();
  for (auto& d : devs) (void)d->close();
  return r;
}

Result<MemoryUse> ReadMemoryUse(pid_t pid) {
  const std::string path = "/proc/" + std::to_string(pid) + "/smaps";
  std::ifstream in(path);
  if (!in) return Status::NotFound("cannot read " + path);
  MemoryUse m;
  bool region = false;
  std::string line;
  while (std::getline(in, line)) {
    // A mapping's header line: "start-end perms offset dev inode [path]".
    const size_t dash = line.find('-');
    if (dash != std::string::npos && dash > 0 && dash < line.find(' ') &&
        std::isxdigit(static_cast<unsigned char>(line[0]))) {
      region =
          line.find("/grants/") != std::string::npos && line.find("/pages/") != std::string::npos;
      continue;
    }
    if (line.rfind("Rss:", 0) == 0) {
      std::istringstream f(line.substr(4));
      uint64_t kb = 0;
      f >> kb;
      m.rss += kb * 1024;
      if (region) m.region_rss += kb * 1024;
    }
  }
  return m;
}

}  // namespace vnvram::bench
