// VolumeStateFile: the per-volume replication state a host must not forget
// across a crash (its fencing promise, the (epoch, sequence) of its content,
// the clean-shutdown mark), kept in "<dir>/<uuid>.state", replaced atomically
// and read back with every field checked (format in docs/backend.md,
// "Replication state file"). Pure functions over files; thread-safe, but
// writes of one volume must be serialized by the caller to be meaningful.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "common/parse.h"
#include "common/result.h"

namespace vnvram::replication {

inline constexpr char kVolumeStateMagic[8] = {'V', 'N', 'V', 'R', 'S', 'T', 'A', 'T'};
inline constexpr uint32_t kVolumeStateVersion = 1;
// The whole file: magic 8, version 4, flags 4, uuid 16, promise 8,
// content epoch 8, content sequence 8, crc32c 4.
inline constexpr size_t kVolumeStateSize = 60;
inline constexpr uint32_t kVolumeStateFlagClean = 0x1;

struct VolumeState {
  uint64_t promise = 0;        // highest epoch this host accepted (fencing)
  uint64_t content_epoch = 0;  // the (epoch, sequence) its copy of the region is at
  uint64_t content_seq = 0;
  // Written by a clean shutdown after the final vault: the vault holds
  // everything this host acknowledged, so it may vouch after restart.
  bool clean = false;
  bool operator==(const VolumeState&) const = default;
};

// "<dir>/<uuid>.state".
std::string VolumeStatePath(const std::string& dir, const Uuid& volume);

// Atomically replaces VolumeStatePath(dir, volume): writes a temp file in
// `dir`, fsyncs it, renames it over the old file and fsyncs `dir`, so a
// crash leaves the old or the new state, never a torn one. On error the
// file holds the old state (or, when only the directory fsync failed, the
// new state not yet known durable): the caller must not act on the new
// state (e.g. answer EPOCH_ACCEPT). No temp file is left behind.
Status WriteVolumeState(const std::string& dir, const Uuid& volume, const VolumeState& state);

// std::nullopt when the file does not exist. kCorruption, one line naming
// the file and the bad field, when a check fails: length, magic, version,
// checksum, flags, or a uuid that is not `volume`. The error of the failed
// call for other I/O errors.
Result<std::optional<VolumeState>> ReadVolumeState(const std::string& dir, const Uuid& volume);

}  // namespace vnvram::replication
