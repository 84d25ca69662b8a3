// Monitor: what `nvram-tool monitor` does. Turns xenstore watch events
// (one watch on the domain root) into one change per vnvram-relevant node:
// frontend state, path-role, activate; backend state, role, epoch,
// replication-state, primary-link, activated, activate-result, error,
// online; everything the multipath directories hold (active-path, status,
// epoch, failover/*); replication role, epoch, serving, promise,
// promote-completed, promote-result, replica/*/state; daemon status and
// peer/*/state. Statistics and every other node are ignored without a read.
//
// A cache of the last value seen per node gives each change its old value.
// An event on a directory (created, removed: xenstored fires once for a
// removed subtree) rescans the relevant part of it, so removals show per
// node. A node that changes several times between two reads shows once,
// from the value last seen to the value read.
//
// The Monitor reads through the XenStore handle it is given and does not
// watch: RunMonitor does. Not thread-safe (one owner).
#pragma once

#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/parse.h"
#include "common/result.h"
#include "platform/xenstore.h"

namespace vnvram::tools {

enum class MonitorKind { kFrontend, kBackend, kMultipath, kReplication, kDaemon };
// "frontend", "backend", "multipath", "replication", "daemon".
std::string_view MonitorKindName(MonitorKind k);

struct MonitorChange {
  Nanos wall{0};     // wall-clock time the change was read
  DomId domain = 0;  // the domain whose directory holds the node
  MonitorKind kind = MonitorKind::kFrontend;
  std::string path;               // the node's full path
  std::string key;                // relative to its directory: state, failover/result, peer/b/state
  std::optional<DomId> frontend;  // backend: the guest the device serves
  std::optional<DevId> dev;       // frontend and backend: the device
  std::string volume;             // volume UUID, "" when unknown or not per volume
  std::optional<std::string> old_value;  // nullopt: did not exist
  std::optional<std::string> new_value;  // nullopt: removed
};

struct MonitorOptions {
  bool json = false;
  // Only changes in this domain's own directories, and in backend
  // directories of devices serving it.
  std::optional<DomId> domain;
};

class Monitor {
 public:
  Monitor(platform::XenStore& xs, const Clock& clock, MonitorOptions options);

  // Reads every relevant node into the cache, reporting nothing. Call after
  // the watch is set so that nothing between the two is missed.
  Status Prime();
  // One watch event: reads what changed under `path` and returns the
  // changes that pass the domain filter, in path order. Paths outside the
  // domain root (e.g. "@releaseDomain") return nothing.
  std::vector<MonitorChange> OnEvent(std::string_view path);
  // One output line, no newline: plain or JSON per the options.
  std::string Format(const MonitorChange& c) const;
  // Nodes in the cache.
  size_t cached() const { return cache_.size(); }

 private:
  enum class Match { kNone, kPrefix, kLeaf };
  struct Where {
    Match match = Match::kNone;
    MonitorKind kind = MonitorKind::kFrontend;
    DomId domain = 0;
    std::string key;
    std::optional<DomId> frontend;
    std::optional<DevId> dev;
    std::string volume;
  };
  struct Pattern {
    MonitorKind kind;
    std::vector<std::string> root;               // fixed segments below the domain's path
    int wildcards;                               // placeholders after the root: devid, F+devid, vol
    std::vector<std::vector<std::string>> keys;  // key segments; "*" matches one
  };

  Where Classify(std::string_view path) const;
  // Reads the relevant nodes below `path` into `seen`; false when `path`
  // does not exist.
  bool Scan(const std::string& path, std::map<std::string, std::string>* seen);
  std::optional<std::string> ReadValue(const std::string& path);
  std::string VolumeOf(const Where& w);
  void Report(const Where& w, const std::string& path, std::optional<std::string> old_value,
              std::optional<std::string> new_value, std::vector<MonitorChange>* out);
  bool Passes(const MonitorChange& c) const;

  platform::XenStore& xs_;
  const Clock& clock_;
  const MonitorOptions options_;
  std::vector<Pattern> patterns_;
  std::map<std::string, std::string, std::less<>> cache_;  // path -> last value
  std::map<std::string, std::string> volumes_;             // device dir -> volume (for removals)
};

// The `nvram-tool monitor` loop: watches the domain root, primes the
// cache, writes one "watching" line to `err`, then writes one line per
// change to `out` (flushed after each) until `stop_fd` becomes readable
// (a signalfd for SIGINT/SIGTERM). Returns OK when stopped; an error when
// the xenstore connection fails.
Status RunMonitor(platform::XenStore& xs, const MonitorOptions& options, std::FILE* out,
                  std::FILE* err, int stop_fd);

}  // namespace vnvram::tools
