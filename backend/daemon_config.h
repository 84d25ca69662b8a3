// DaemonConfig: vnvramd's settings, from an optional config file of
// "key = value" lines with the command line over it. Parsing is strict: an
// unknown key, a repeated key, a missing "=" or a bad value is a one-line
// error naming the file, line, key and value. Pure functions; thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/log.h"
#include "common/result.h"

namespace vnvram::backend {

struct DaemonConfig {
  std::string platform;                    // "xen" or "sim:<dir>:<domid>"; required
  std::string vault_dir;                   // required
  std::string host_id;                     // default: the host name
  std::chrono::seconds vault_interval{0};  // 0: no periodic vault
  log::Level log_level = log::Level::kInfo;
  // Lines appended to this file (reopened on SIGHUP); empty: stderr.
  std::string log_file;
  std::chrono::milliseconds stats_interval{1000};
  uint32_t max_ring_page_order = 4;  // <= VNVRAMIF_MAX_RING_PAGE_ORDER
  bool copy_mode = true;             // offer feature-copy-mode
  std::string cluster_file;          // replication cluster file; empty: no replication
  std::string key_file;              // this host's CurveZMQ key pair (when the cluster has keys)
  std::chrono::milliseconds persist_timeout{5000};  // replicated persists fail after this
  std::chrono::microseconds persist_spin{300};      // wait for the ack without sleeping first
  // A ring worker that drained its ring looks for the next request this
  // long without sleeping before it blocks on the event channel.
  std::chrono::microseconds ring_spin{50};
  // Runs only the replication engine (a witness: a member of replica
  // groups that serves no guest): no platform, no xenstore. Needs
  // cluster_file; platform is then optional and unused.
  bool replica_only = false;
};

// The settings a config file may hold; each optional so the command line
// can tell "not given" from a default.
struct ConfigOverrides {
  std::optional<std::string> platform;
  std::optional<std::string> vault_dir;
  std::optional<std::string> host_id;
  std::optional<std::chrono::seconds> vault_interval;
  std::optional<log::Level> log_level;
  std::optional<std::string> log_file;
  std::optional<std::chrono::milliseconds> stats_interval;
  std::optional<uint32_t> max_ring_page_order;
  std::optional<bool> copy_mode;
  std::optional<std::string> cluster_file;
  std::optional<std::string> key_file;
  std::optional<std::chrono::milliseconds> persist_timeout;
  std::optional<std::chrono::microseconds> persist_spin;
  std::optional<std::chrono::microseconds> ring_spin;
  std::optional<bool> replica_only;
};

// Parses the text of a config file; `name` is used in errors.
// Grammar: lines; '#' starts a comment line; blank lines are ignored;
// otherwise "key = value" with optional spaces around '=' and at both ends.
Result<ConfigOverrides> ParseConfigText(std::string_view text, std::string_view name);
Result<ConfigOverrides> ParseConfigFile(const std::string& path);

// Checks and converts one value for `key` into `out` (the same checks for
// the file and the command line).
Status ApplyConfigValue(std::string_view key, std::string_view value, ConfigOverrides* out);

// `file` under `cli`, on top of the defaults; checks that required settings
// are present (platform and vault-dir; with replica-only, cluster and
// vault-dir) and that a host id is a valid name.
Result<DaemonConfig> MergeConfig(const ConfigOverrides& file, const ConfigOverrides& cli);

}  // namespace vnvram::backend
