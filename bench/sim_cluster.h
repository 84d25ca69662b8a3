// BenchCluster: the simulated cluster vnvram-bench measures: hosts that
// serve guests (a vnvram-xenstored with guest domain 1, and vnvramd as
// dom0) and witness hosts (vnvramd --replica-only), one cluster file, and
// volumes attached to the guest with nvram-tool, as an operator does. All
// are real child processes started through their --ready-fd; the
// destructor stops them (SIGTERM, then SIGKILL) and removes the work
// directory. One object per run; not thread-safe.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"

namespace vnvram::bench {

// A child process that wrote its ready byte.
class Daemon {
 public:
  // Appends "--ready-fd N" to `argv` (argv[0] absolute); stdout and stderr
  // go to `log_path`; `env` entries ("NAME=value") are added.
  static Result<std::unique_ptr<Daemon>> Start(std::vector<std::string> argv,
                                               const std::string& log_path,
                                               const std::vector<std::string>& env);
  ~Daemon();
  pid_t pid() const { return pid_; }
  // SIGKILL, then reaps it: a host lost.
  void Kill();

 private:
  Daemon() = default;
  pid_t pid_ = -1;
};

// Runs a tool to completion (10 s at most); its output on failure.
Status RunTool(const std::vector<std::string>& argv);

struct BenchHost {
  std::string id;
  bool serves_guests = true;  // false: vnvramd --replica-only
  uint32_t guests = 1;        // guest domains 1..guests
};

struct BenchVolume {
  std::string uuid;
  std::string name;
  uint64_t size = 0;
  std::vector<std::string> replicas;  // empty: a local volume (no cluster entry)
  std::string policy = "sync";
};

struct ClusterSettings {
  uint32_t heartbeat_interval_ms = 100;
  uint32_t peer_expiry_ms = 2000;
  std::vector<std::string> vnvramd_args;  // extra, for every vnvramd
  bool keep = false;                      // keep the work directory (logs)
};

class BenchCluster {
 public:
  static Result<std::unique_ptr<BenchCluster>> Start(const std::string& bin_dir,
                                                     const std::string& work_dir,
                                                     const std::vector<BenchHost>& hosts,
                                                     const std::vector<BenchVolume>& volumes,
                                                     const ClusterSettings& settings);
  ~BenchCluster();

  // The platform spec of guest domain `guest` on guest-serving `host`.
  std::string GuestPlatform(const std::string& host, uint32_t guest = 1) const;
  std::string SimDir(const std::string& host) const;
  // Attaches `volume` to guest domain `guest` of `host` as device `devid`.
  Status Attach(const std::string& host, uint32_t devid, const BenchVolume& volume,
                uint32_t guest = 1);
  pid_t VnvramdPid(const std::string& host) const;
  // Kills `host`'s vnvramd with SIGKILL and reaps it.
  Status KillVnvramd(const std::string& host);
  // nvram-tool, as dom0 of `host`, with `args`.
  Status Tool(const std::string& host, const std::vector<std::string>& args) const;
  const std::string& work_dir() const { return work_; }

 private:
  BenchCluster() = default;
  Status StartHost(const BenchHost& h);
  std::string bin_;
  std::string work_;
  std::string cluster_file_;
  bool keep_ = false;
  std::vector<std::string> vnvramd_args_;
  std::vector<std::string> env_;
  std::map<std::string, std::unique_ptr<Daemon>> xenstored_;
  std::map<std::string, std::unique_ptr<Daemon>> vnvramd_;
};

}  // namespace vnvram::bench
