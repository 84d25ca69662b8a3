// vnvram-fault-soak: the fault harness as a program (make soak): a cluster
// of real processes on the sim platform (tests/fault/fault_cluster.h), a
// guest persisting without pause, and --faults faults at random moments
// (tests/fault/fault_runner.h). One line per fault, then the figures.
// Exit 0 when nothing was lost, nothing diverged, no epoch had two
// primaries and every failover met its deadline; 1 otherwise; 2 on bad
// arguments.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>

#include "common/log.h"
#include "tests/fault/fault_runner.h"

namespace {

std::atomic<bool> g_stop{false};

void OnSignal(int) {
  g_stop.store(true);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vnvram-fault-soak: inject faults into a sim cluster and check every persist"};
  int faults = 1000;
  uint64_t seed = 0;
  std::string bin_dir = VNVRAM_BIN_DIR;
  bool keep = false;
  uint64_t failover_deadline_ms = 5000;
  app.add_option("--faults", faults, "faults to inject (default 1000)")
      ->check(CLI::Range(1, 1000000));
  app.add_option("--seed", seed, "random seed (default: from the clock; printed)");
  app.add_option("--bin-dir", bin_dir, "directory of vnvramd, vnvram-xenstored, ...");
  app.add_option("--failover-deadline-ms", failover_deadline_ms,
                 "a failover slower than this counts as a problem (default 5000)")
      ->check(CLI::Range(1, 600000));
  app.add_flag("--keep", keep, "keep the scratch directory (logs, vaults)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  vnvram::log::Init("vnvram-fault-soak", vnvram::log::Level::kWarn);
  if (seed == 0) seed = std::random_device{}() | 1;
  vnvram::testing::FaultClusterOptions co;
  co.bin_dir = bin_dir;
  co.keep_dir = keep;
  auto cluster = vnvram::testing::FaultCluster::Create(co);
  if (!cluster.ok()) {
    std::fprintf(stderr, "vnvram-fault-soak: %s\n", cluster.status().ToString().c_str());
    return 1;
  }
  std::printf("vnvram-fault-soak: %d faults, seed %llu, scratch %s\n", faults,
              static_cast<unsigned long long>(seed), (*cluster)->scratch().c_str());
  std::fflush(stdout);
  vnvram::testing::FaultRunOptions o;
  o.faults = faults;
  o.seed = seed;
  o.failover_deadline = std::chrono::milliseconds(failover_deadline_ms);
  // SIGINT/SIGTERM: finish the fault under way, check, report and clean
  // up (the cluster's processes are children of this one).
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  o.stop_requested = [] { return g_stop.load(); };
  o.progress = [](const std::string& line) {
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
  };
  const auto t0 = std::chrono::steady_clock::now();
  const vnvram::testing::FaultReport r = vnvram::testing::RunFaults(**cluster, o);
  const auto secs =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - t0);
  std::printf("\n%s(seed %llu, %lld s)\n", r.Summary().c_str(),
              static_cast<unsigned long long>(seed), static_cast<long long>(secs.count()));
  return r.clean() && !g_stop.load() ? 0 : 1;
}
