// Engine: this host's replication engine: one ROUTER bound on the host's
// endpoint, one DEALER per peer, sessions (HELLO), heartbeats and peer
// expiry, the fan-out of persists with cumulative acknowledgements and the
// majority rule, resync (dirty chunks or full copy), elections (promise,
// majority, adoption of the freshest copy, confirmation), INSPECT, and
// CurveZMQ when the cluster file has keys. All sockets live on one I/O
// thread; the public methods are thread-safe (they post to that thread or
// read snapshots under a mutex). Protocol: docs/replication.md.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "backend/persist_sink.h"
#include "backend/replication/cluster_config.h"
#include "backend/replication/curve.h"
#include "backend/replication/volume_replica.h"
#include "common/clock.h"
#include "common/result.h"

namespace vnvram::replication {

struct EngineOptions {
  std::string host_id;
  ClusterConfig cluster;
  std::string state_dir;              // vaults and state files
  std::optional<CurveKeyPair> keys;   // required when the cluster file has keys
  std::optional<std::string> listen;  // bind here instead of the cluster endpoint
  Nanos persist_timeout = std::chrono::seconds(5);
  // How long a persist waits for its acknowledgement without sleeping
  // (yielding the CPU) before it blocks; 0: block at once.
  Nanos persist_spin = std::chrono::microseconds(300);
  Nanos election_timeout = std::chrono::seconds(3);
  // Called on the I/O thread whenever published state changed.
  std::function<void()> on_change;
};

enum class ReplicaLinkState : uint8_t { kInSync, kSyncing, kOutdated, kDown };
std::string_view ReplicaLinkStateName(ReplicaLinkState s);

enum class PromoteResult : uint8_t { kOk, kNoMajority, kSuperseded, kNotReplica, kError };
std::string_view PromoteResultName(PromoteResult r);

// What an activation (a frontend path asking its backend to serve) came to.
// Not final: the host waits for its copy's resync before it asks for an
// epoch (waiting-resync); a final outcome follows.
struct ActivateOutcome {
  bool final = true;
  PromoteResult result = PromoteResult::kOk;
  std::string message;  // one line when result is not kOk
};
using ActivateCallback = std::function<void(const ActivateOutcome&)>;

struct ReplicaStatus {
  std::string host;
  ReplicaLinkState state = ReplicaLinkState::kDown;
  uint32_t progress = 0;  // percent, while syncing
  uint64_t acked = 0;
};

struct VolumeStatus {
  VolumeEntry entry;
  VolumeView view;
  std::vector<ReplicaStatus> replicas;  // primary only
  uint64_t promote_completed = 0;
  PromoteResult promote_result = PromoteResult::kOk;
  // The host this one follows (itself when primary; empty when unknown)
  // and whether it is reachable from here.
  std::string primary;
  bool primary_link = false;
};

struct PeerStatus {
  std::string host;
  std::string endpoint;
  std::string state;  // "up", "down", "refused"
  uint64_t last_seen_ms = 0;
};

struct EngineStatus {
  std::vector<VolumeStatus> volumes;
  std::vector<PeerStatus> peers;
  uint64_t frames_in = 0;
  uint64_t frames_refused = 0;
};

class Engine {
 public:
  // Loads every volume this host replicates (vault and state file), binds,
  // connects and starts the I/O thread. The cluster's first replica of a
  // volume proposes the first epoch when the group is new or restarts from
  // a clean shutdown.
  static Result<std::unique_ptr<Engine>> Start(EngineOptions options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // The replicated volume `uuid` if this host is in its group.
  std::shared_ptr<VolumeReplica> Find(const Uuid& uuid) const;
  // A sink over the guest's region of `uuid` (its bytes are filled from
  // this host's copy now).
  Result<std::unique_ptr<backend::PersistSink>> AttachRegion(const Uuid& uuid,
                                                             std::span<std::byte> region);
  // Asks for a new epoch with this host as primary; the outcome shows in
  // GetStatus() as promote_completed/promote_result for `request`.
  void Promote(const Uuid& uuid, bool force, uint64_t request);
  // Makes this host the serving primary of `uuid` for a frontend path (see
  // docs/multipath.md): at once when it already is; after the resync in
  // progress when its copy is behind (reporting waiting-resync first);
  // otherwise through an election under the majority rule. Without `force`
  // every host of the group must be reachable (a planned switch). `done`
  // runs on the I/O thread.
  void Activate(const Uuid& uuid, bool force, ActivateCallback done);
  EngineStatus GetStatus() const;
  // The endpoint the ROUTER is bound to (with a port chosen by the system
  // when EngineOptions::listen asked for "*").
  const std::string& endpoint() const { return bound_; }

  // Vaults every volume whose copy moved since its last vault (all when
  // !only_changed).
  vnvram::Status VaultAll(bool only_changed);
  // Stops the I/O thread, then vaults every copy and marks the state files
  // clean. Idempotent.
  vnvram::Status Shutdown();

 private:
  class IoThread;
  explicit Engine(EngineOptions options);

  EngineOptions options_;
  std::map<std::string, std::shared_ptr<VolumeReplica>> volumes_;  // by canonical uuid
  std::unique_ptr<IoThread> io_;
  std::string bound_;
  bool shut_down_ = false;
};

}  // namespace vnvram::replication
