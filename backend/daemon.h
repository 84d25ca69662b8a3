// Daemon: vnvramd's control plane: platform handles, the volume registry,
// one XenbusBackend per device under BackendRoot(self), the daemon keys and
// the vault triggers. Single-threaded: everything but the ring workers runs
// on the thread that calls Run().
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>

#include "backend/daemon_config.h"
#include "backend/replication_control.h"
#include "backend/volume_registry.h"
#include "backend/xenbus_backend.h"
#include "common/result.h"
#include "common/version.h"
#include "platform/platform.h"

namespace vnvram::backend {

inline constexpr std::string_view kVnvramdVersion = kVersion;

// The one event loop polls the xenstore watch fd, a signalfd and the ring
// workers' wake eventfd; its timeout drives the statistics refresh and the
// periodic vault. Regions are vaulted on SIGTERM/SIGINT, SIGUSR1, a
// vault-request and periodically.
class Daemon {
 public:
  static Result<std::unique_ptr<Daemon>> Create(DaemonConfig config,
                                                std::unique_ptr<platform::Platform> platform);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Serves until SIGTERM or SIGINT arrives on `signal_fd` (a signalfd for
  // SIGTERM, SIGINT, SIGHUP and SIGUSR1, which the caller blocked). Writes
  // one byte to `ready_fd` (when >= 0) once every existing device has been
  // taken over. Returns an error when xenstore is lost.
  Status Run(int signal_fd, int ready_fd);

 private:
  using DeviceKey = std::pair<DomId, DevId>;

  Daemon(DaemonConfig config, std::unique_ptr<platform::Platform> platform)
      : config_(std::move(config)), platform_(std::move(platform)) {}
  Status Open();
  Status PublishDaemonKeys(std::string_view status);
  // Re-reads every device directory: creates, refreshes and removes.
  void Rescan();
  void RescanFrontend(DomId f, std::set<DeviceKey>* seen);
  // The device's backend directory changed (or may be gone).
  void Reconcile(DomId f, DevId dev);
  void HandleWatch(const platform::WatchEvent& ev, std::set<DeviceKey>* touched, bool* rescan);
  void HandleVaultRequest();
  // Vaults everything now; writes the request's outcome when `request`.
  Status VaultNow(std::optional<uint64_t> request);
  void PublishAllStats(bool force);
  void Wake();
  std::string FrontendWatchToken(DomId f, DevId dev) const;

  const DaemonConfig config_;
  const std::unique_ptr<platform::Platform> platform_;
  DomId self_ = 0;
  std::unique_ptr<platform::XenStore> xs_;
  std::unique_ptr<platform::GrantSharer> sharer_;
  std::unique_ptr<platform::GrantMapper> mapper_;
  std::unique_ptr<ReplicationControl> replication_;  // with --cluster
  std::unique_ptr<VolumeRegistry> volumes_;
  std::unique_ptr<DeviceEnv> env_;
  int wake_fd_ = -1;
  int lock_fd_ = -1;  // flock on <vault-dir>/.vnvramd.lock, held while alive
  uint64_t vault_completed_ = 0;
  std::map<DeviceKey, std::unique_ptr<XenbusBackend>> devices_;
};

}  // namespace vnvram::backend
