// vnvramd --replica-only: the replication engine alone, a witness member of
// volumes' replica groups that serves no guest (no platform, no xenstore).
// RunReplicaOnly owns the engine, the vault-directory lock and the event
// loop of that mode; it runs on the calling thread until a stop signal.
#pragma once

#include "backend/daemon_config.h"

namespace vnvram::backend {

// Runs until SIGTERM or SIGINT arrives on `signal_fd` (a signalfd; SIGUSR1
// vaults every copy); then the engine's shutdown vaults every copy and
// marks it clean. Writes one byte to `ready_fd` (when >= 0) once serving.
// 0 on a clean stop, 1 on an error (logged).
int RunReplicaOnly(const DaemonConfig& config, int signal_fd, int ready_fd);

}  // namespace vnvram::backend
