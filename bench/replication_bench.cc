// vnvram-repl-bench: replicated persist latency against its baselines, in
// one run (BRIEF §4). Two replication engines (hosts "a" and "b", one volume
// replicated on both, sync policy) talk over loopback TCP inside this
// process; the guest's region is plain memory and persists go through the
// same ReplicatingPersistSink vnvramd's ring workers use. Baselines (the
// ones vnvram-bench uses, bench/baselines.h), with the same sizes and socket
// options: a bare ZeroMQ DEALER -> ROUTER round trip of a 4 KiB frame
// answered by a 36-byte ack from a polling thread, one ZeroMQ context per
// end (the client blocking in recv, and the client waiting the way a
// persist does: polling and yielding for up to 300 us first), and
// fdatasync of a 4 KiB write to a local file.
//
//   vnvram-repl-bench [--count N] [--size BYTES] [--dir DIR]
//
// Prints p50/p99/mean per figure and the ratios. Not a test: it never fails
// on timing.
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "backend/replication/cluster_config.h"
#include "backend/replication/engine.h"
#include "bench/baselines.h"
#include "bench/bench_stats.h"
#include "common/log.h"
#include "common/parse.h"

namespace {

using Clock = std::chrono::steady_clock;
using vnvram::replication::Engine;
using vnvram::replication::EngineOptions;

using vnvram::bench::Samples;
using vnvram::bench::Summary;

void Print(const char* name, const Summary& s) {
  std::printf("  %-44s p50 %8.1f us  p99 %8.1f us  mean %8.1f us\n", name, s.p50, s.p99, s.mean);
}

int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    return -1;
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

int Main(int argc, char** argv) {
  int count = 20000;
  size_t size = 4096;
  std::string dir = "/tmp";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--count") {
      auto v = vnvram::ParseU64InRange(argv[i + 1], 100, 10'000'000, "--count");
      if (!v.ok()) return std::fprintf(stderr, "%s\n", v.status().message().c_str()), 2;
      count = static_cast<int>(*v);
    } else if (a == "--size") {
      auto v = vnvram::ParseSize(argv[i + 1], "--size");
      if (!v.ok() || *v == 0 || *v > (1u << 20)) {
        return std::fprintf(stderr, "--size '%s': expected 1..1M\n", argv[i + 1]), 2;
      }
      size = *v;
    } else if (a == "--dir") {
      dir = argv[i + 1];
    } else {
      return std::fprintf(stderr, "unknown option '%s'\n", a.c_str()), 2;
    }
  }
  if (argc % 2 == 0)
    return std::fprintf(stderr, "usage: %s [--count N] [--size B] [--dir D]\n", argv[0]), 2;
  vnvram::log::Init("vnvram-repl-bench", vnvram::log::Level::kWarn);

  const std::string work = dir + "/vnvram-bench." + std::to_string(::getpid());
  std::filesystem::create_directories(work + "/a");
  std::filesystem::create_directories(work + "/b");
  const int pa = FreePort();
  const int pb = FreePort();
  const std::string uuid = "0b3e6c2a-9d1f-4e2b-8c7a-6f5e4d3c2b1a";
  const std::string text = std::string(R"({"version": 1, "settings": {"heartbeat-interval-ms": 100,
       "peer-expiry-ms": 2000}, "hosts": [)") +
                           R"({"id": "a", "endpoint": "tcp://127.0.0.1:)" + std::to_string(pa) +
                           R"("},)" + R"({"id": "b", "endpoint": "tcp://127.0.0.1:)" +
                           std::to_string(pb) + R"("}],)" + R"("volumes": [{"uuid": ")" + uuid +
                           R"(", "name": "bench", "size": "16M",
       "replicas": ["a", "b"], "policy": "sync"}]})";
  auto cluster = vnvram::replication::ParseClusterConfig(text, "bench cluster");
  if (!cluster.ok()) {
    std::fprintf(stderr, "%s\n", cluster.status().ToString().c_str());
    return 1;
  }
  std::unique_ptr<Engine> engines[2];
  const char* ids[2] = {"a", "b"};
  for (int i = 0; i < 2; ++i) {
    EngineOptions o;
    o.host_id = ids[i];
    o.cluster = *cluster;
    o.state_dir = work + "/" + ids[i];
    o.persist_spin = std::chrono::microseconds(300);  // vnvramd's default
    auto e = Engine::Start(std::move(o));
    if (!e.ok()) {
      std::fprintf(stderr, "engine %s: %s\n", ids[i], e.status().ToString().c_str());
      return 1;
    }
    engines[i] = std::move(e).value();
  }
  const vnvram::Uuid vol = *vnvram::ParseUuid(uuid);
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  while (!engines[0]->Find(vol)->View().serving) {
    if (Clock::now() > deadline) {
      std::fprintf(stderr, "host a did not become the serving primary within 20 s\n");
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // setup only, not measured
  }
  std::vector<std::byte> region(16u << 20);
  auto sink = engines[0]->AttachRegion(vol, region);
  if (!sink.ok()) {
    std::fprintf(stderr, "%s\n", sink.status().ToString().c_str());
    return 1;
  }
  Samples us;
  us.Reserve(count);
  const uint64_t slots = region.size() / size;
  const auto started = Clock::now();
  for (int i = -count / 10; i < count; ++i) {
    const uint64_t off = (static_cast<uint64_t>(i + count) % slots) * size;
    std::memset(region.data() + off, i & 0xff, size);
    const auto t0 = Clock::now();
    auto r = (*sink)->Persist(off, size);
    if (!r.ok()) {
      std::fprintf(stderr, "persist failed: %s\n", r.status().ToString().c_str());
      return 1;
    }
    if (i >= 0) us.Add(vnvram::bench::MicrosSince(t0));
  }
  // The baselines run as long as the persists did.
  const auto run =
      std::max(std::chrono::milliseconds(100),
               std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started));
  const Summary repl = us.Summarize();
  sink->reset();
  for (auto& e : engines) (void)e->Shutdown();
  auto zmq_rtt = vnvram::bench::ZmqRoundTrip(size, run, /*spin=*/false);
  auto zmq_spin = vnvram::bench::ZmqRoundTrip(size, run, /*spin=*/true);
  auto sync = vnvram::bench::WriteFdatasync(work, size, std::min(count, 2000));
  for (const auto* r : {&zmq_rtt, &zmq_spin, &sync}) {
    if (!r->ok()) {
      std::fprintf(stderr, "baseline: %s\n", r->status().ToString().c_str());
      return 1;
    }
  }
  const Summary zb = zmq_rtt->Summarize();
  const Summary zs = zmq_spin->Summarize();
  const Summary fs = sync->Summarize();
  std::filesystem::remove_all(work);

  std::printf("vnvram replication benchmark: %zu-byte persists at QD1, %d samples, loopback TCP\n",
              size, count);
  Print("persist, 1 replica (sync)", repl);
  Print("baseline: bare ZeroMQ round trip, same size", zb);
  Print("baseline: the same, waiting like a persist", zs);
  Print("baseline: pwrite + fdatasync, local file", fs);
  // Against the faster of the two ways to wait for the answer.
  const double best = std::min(zb.p50, zs.p50);
  std::printf(
      "  ratio persist p50 / ZeroMQ round trip p50: %.2fx (target <= 1.3x; against the "
      "faster baseline)\n",
      repl.p50 / best);
  if (fs.p50 > 0) {
    std::printf("  ratio persist p50 / fdatasync p50:         %.2fx (target <= 0.25x)\n",
                repl.p50 / fs.p50);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vnvram-repl-bench: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "vnvram-repl-bench: unknown exception\n");
  }
  return 1;
}
