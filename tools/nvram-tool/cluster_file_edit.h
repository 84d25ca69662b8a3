// ClusterFileEdit: the changes `nvram-tool volume create|destroy` make to a
// cluster file (format: docs/replication.md). Under an exclusive flock of
// the file the text is read and validated with the replication parser,
// changed as JSON (every other key, entry and their order kept), validated
// again, written to a temporary file in the same directory (the original's
// mode and owner), fsynced and renamed over the original, so a reader sees
// the old or the new file, never a mix. Stateless functions; concurrent
// editors of one file serialise on the lock.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "backend/replication/cluster_config.h"
#include "common/parse.h"
#include "common/result.h"

namespace vnvram::tools {

struct NewVolume {
  std::string name;
  uint64_t size = 0;
  std::vector<std::string> replicas;  // host ids, the initial primary first
  replication::Policy policy = replication::Policy::kSync;
  std::optional<Uuid> uuid;  // a random (version 4) UUID when absent
};

// Checks `v` against the cluster `c` (name, size, replicas, UUID as the
// parser would, plus uniqueness). kInvalidArgument naming the option
// (--name, --size, --replicas, --uuid) and the bad value.
Status CheckNewVolume(const replication::ClusterConfig& c, const NewVolume& v);

// Adds `v` to the cluster file at `path`; returns its UUID. Errors:
// kInvalidArgument (a bad file or volume; the file is unchanged), kIoError
// or an errno-based code for the file system.
Result<Uuid> AddVolumeToClusterFile(const std::string& path, const NewVolume& v);

// A volume by UUID or by name.
using VolumeSelector = std::variant<Uuid, std::string>;
// The selector for `text`: a UUID when it parses as one, else a name.
VolumeSelector SelectVolume(const std::string& text);
std::string DescribeSelector(const VolumeSelector& s);

// Removes the selected volume from the cluster file. `may_remove` runs
// under the lock with the entry found; an error from it aborts (the file is
// unchanged). Returns the removed entry. kNotFound when no volume matches.
Result<replication::VolumeEntry> RemoveVolumeFromClusterFile(
    const std::string& path, const VolumeSelector& which,
    const std::function<Status(const replication::VolumeEntry&)>& may_remove);

// A random version 4 UUID (getrandom).
Result<Uuid> RandomUuid();

}  // namespace vnvram::tools
