// FsyncWorkload: the metadata-heavy fsync workload of the Xen lab's ext4
// scenario (issue 8, docs/lab.md): files created with small writes, each
// fsynced, renamed into place and its directory fsynced, in subdirectories
// created (and their parent fsynced) on the way; and the check that every
// file reported durable is there with its exact bytes. Each file's content
// is a pure function of its index, so a verifier needs only the count.
// Stateless functions; thread-safe for distinct directories.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "common/status.h"

namespace vnvram::lab {

// Files per subdirectory (d000, d001, ...).
inline constexpr uint32_t kFilesPerDir = 50;
// Bytes per write(2) call: the "small writes".
inline constexpr size_t kWriteChunk = 512;
// The largest index a workload may use (bounds names and the disk).
inline constexpr uint32_t kMaxIndex = 999'999;

// DIR/dNNN/fNNNNNN: the final name of file `index` under `dir`.
std::string FilePath(const std::string& dir, uint32_t index);
// DIR/dNNN: the subdirectory of file `index`.
std::string SubdirPath(const std::string& dir, uint32_t index);
// The content of file `index`: a text header naming the index and the size,
// then pseudo-random bytes; 200 to 3999 bytes in all. Deterministic.
std::vector<std::byte> FileContent(uint32_t index);

struct WorkloadOptions {
  std::string dir;     // created (and its parent fsynced) when missing
  uint32_t first = 0;  // index of the first file
  uint32_t count = 0;  // files to write: first .. first + count - 1
};

struct WorkloadStats {
  uint32_t files = 0;   // files durable: content fsynced, renamed, directory fsynced
  uint64_t fsyncs = 0;  // fsync(2) calls, files and directories
  uint64_t bytes = 0;   // file bytes written
  Nanos elapsed{0};     // the whole run
  Nanos file_p50{0};    // one file, open to its directory's fsync: median
  Nanos file_p99{0};    //   and 99th percentile (nearest rank)
};

// Called once file `index` is durable; `done` files are then durable
// (first .. first + done - 1). A non-OK status stops the workload with it.
using SyncedFn = std::function<Status(uint32_t index, uint32_t done)>;

// Writes the files in order. For each: open DIR/dNNN/.fNNNNNN.tmp, write
// the content in kWriteChunk pieces, fsync, close, rename to fNNNNNN,
// fsync DIR/dNNN; then `synced`. A new subdirectory is created and DIR
// fsynced before its first file. The first error stops the run and is
// returned naming the file and the call.
Result<WorkloadStats> RunFsyncWorkload(const WorkloadOptions& options, const Clock& clock,
                                       const SyncedFn& synced);

// Two runs of the workload compared fairly: first `warmup` files in
// DIR.warmup of each directory (not counted: the first files on a fresh
// filesystem, and the first run of the code, cost several times the
// rest), then `rounds` rounds of count / rounds files, each round on both
// directories one after the other, the order alternating from round to
// round, so that a change of load moves both alike. The files of
// directory k are first .. first + count - 1 (count a multiple of
// rounds). Returns the two runs' totals: files, fsyncs, bytes and elapsed
// summed over the rounds (the percentiles are left zero).
struct InterleavedOptions {
  std::string dir_a;
  std::string dir_b;
  uint32_t count = 0;
  uint32_t rounds = 1;
  uint32_t warmup = 0;
};
Result<std::pair<WorkloadStats, WorkloadStats>> RunInterleaved(const InterleavedOptions& options,
                                                               const Clock& clock);

struct VerifyStats {
  uint32_t verified = 0;  // files first .. first + count - 1, all intact
  uint64_t bytes = 0;     // their bytes
  uint32_t beyond = 0;    // intact files after them, up to the first missing one
};

// Checks files first .. first + count - 1 under `dir`: each must exist with
// exactly FileContent(index). kNotFound or kCorruption naming the first bad
// file (its index, path, and the size or first differing byte).
Result<VerifyStats> VerifyFsyncWorkload(const std::string& dir, uint32_t first, uint32_t count);

}  // namespace vnvram::lab
