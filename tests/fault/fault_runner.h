// FaultRunner: the fault-injection loop of the harness (docs/fault-model.md
// "The fault harness"). A guest writer persists numbered records without
// pause while faults land at random moments (after a random number of
// acknowledgements): kill -9 of the primary, of a replica, of the guest's
// writer and of host W's sim xenstored, a clean restart of a backend, a
// partition of one member and its heal, a slow member. After each fault it
// waits for recovery, then at a quiescent point (the writer paused after a
// persist) checks every member's copy against the ledger of acknowledged
// records, and checks throughout that no epoch has two primaries.
// Single-threaded; one runner per cluster.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/result.h"
#include "tests/fault/fault_cluster.h"

namespace vnvram::testing {

enum class FaultKind {
  kKillPrimary,
  kKillReplica,
  kKillFrontend,
  kKillXenstored,
  kRestartBackend,
  kPartition,
  kSlowReplica,
  // The guest's standby path's backend killed and restarted; once it is
  // back in sync, but before the guest has its path ready again, the
  // primary is killed (the multipath failover must still reach it).
  kFlapStandby,
};
inline constexpr int kFaultKinds = 8;
std::string_view FaultKindName(FaultKind k);

struct FaultRunOptions {
  int faults = 50;
  uint64_t seed = 1;
  // Kill or cut of the primary until the guest's next acknowledgements.
  std::chrono::milliseconds failover_deadline{5000};
  // After a fault: a healthy primary, every member in sync, both paths.
  std::chrono::milliseconds recovery_deadline{30000};
  uint64_t pause_every = 256;                        // the writer's quiescent points
  std::function<void(const std::string&)> progress;  // one line per fault
  // Polled between faults: true ends the run early (a signal), with the
  // final check and the report as after the last fault.
  std::function<bool()> stop_requested;
};

struct FaultReport {
  std::map<std::string, int> faults;  // by kind
  uint64_t acknowledged = 0;          // records the guest saw persisted
  uint64_t passes = 0;                // complete passes over the region
  uint64_t checkpoints = 0;           // quiescent checks of every copy
  uint64_t lost = 0;                  // acknowledged records missing from a copy
  uint64_t divergent = 0;             // checks where an in-sync copy differed
  uint64_t split_brain = 0;           // epochs with more than one primary
  uint64_t epochs = 0;                // distinct epochs seen with a primary
  uint64_t over_deadline = 0;         // failovers slower than the deadline
  uint64_t writer_errors = 0;         // persist errors the guest saw
  std::map<std::string, std::vector<double>> failover_ms;  // by fault kind
  std::vector<std::string> problems;                       // the first few, in words
  Status aborted;  // the run could not go on (no recovery in time...)

  bool clean() const {
    return aborted.ok() && lost == 0 && divergent == 0 && split_brain == 0 && over_deadline == 0 &&
           writer_errors == 0;
  }
  std::string Summary() const;
};

// Starts the cluster (all members, the guest's paths, the writer) and runs
// `options.faults` faults. The report says what happened; its `aborted`
// is set when the harness itself could not go on.
FaultReport RunFaults(FaultCluster& cluster, const FaultRunOptions& options);

}  // namespace vnvram::testing
