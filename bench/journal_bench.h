// The journal replay figure of vnvram-bench (BRIEF §4): a journal filled on
// a replicated volume's primary, the primary killed (-9), a replica
// promoted, and the journal replayed by a new guest served by it, against
// memcpy of the same bytes in the same mapping. Runs alone; owns its
// cluster; not thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "bench/sim_cluster.h"
#include "common/result.h"

namespace vnvram::bench {

struct JournalReplayRun {
  uint64_t region_bytes = 0;
  uint64_t records = 0;
  uint64_t record_payload = 0;  // bytes per record
  uint64_t log_bytes = 0;       // bytes replay read: headers and payloads
  double promote_ms = 0;        // kill -9 of the primary -> promote done
  double first_replay_us = 0;   // the new guest's first replay
  double warm_replay_us = 0;    // median of later replays in the same mapping
  double memcpy_us = 0;         // median memcpy of the log's bytes
};

// `uuid` names the volume; `work` is the cluster's directory.
Result<JournalReplayRun> MeasureJournalReplay(const std::string& bin_dir, const std::string& work,
                                              const ClusterSettings& settings,
                                              const std::string& uuid, uint64_t region_bytes,
                                              uint64_t record_payload);

}  // namespace vnvram::bench
