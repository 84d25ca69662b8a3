// ReplicationControl: vnvramd's control-plane side of replication. Owns the
// replication engine, lends its volumes to the registry (ReplicatedVolumes),
// publishes the engine's state under the daemon and replication xenstore
// directories, and turns promote requests written by nvram-tool into
// engine promotions. Control thread only, except Attach/ReplicatedSize
// which the registry calls on that same thread.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "backend/activation.h"
#include "backend/daemon_config.h"
#include "backend/replication/engine.h"
#include "backend/volume_registry.h"
#include "common/clock.h"
#include "common/result.h"
#include "platform/xenstore.h"

namespace vnvram::backend {

class ReplicationControl final : public ReplicatedVolumes {
 public:
  // Loads the cluster file (and key file), starts the engine. `wake` is
  // called from the engine's thread when its state changed.
  static Result<std::unique_ptr<ReplicationControl>> Start(const DaemonConfig& config,
                                                           platform::XenStore& xs, DomId self,
                                                           std::function<void()> wake);
  ~ReplicationControl() override;

  // ReplicatedVolumes.
  std::optional<uint64_t> ReplicatedSize(const Uuid& volume) const override;
  Result<std::unique_ptr<PersistSink>> Attach(const Uuid& volume,
                                              std::span<std::byte> region) override;

  // A frontend path's activation (see backend/activation.h); false when the
  // volume is not replicated here.
  bool Activate(const Uuid& volume, bool force, ActivationDone done);

  // Watches the promote-request key of every volume (tokens from Owns()).
  Status WatchRequests();
  // True when `token` is one of ours; then handles the watch event.
  bool HandleWatch(std::string_view token);
  // Writes what changed since the last call (all when `force`). The
  // counters (sequences, resync progress, peers' last-seen) go at most
  // every kCounterInterval (and at the daemon's stats interval): a replica
  // applies thousands of frames a second, xenstore must not see each.
  void Publish(bool force);
  static constexpr std::chrono::milliseconds kCounterInterval{250};
  Status VaultAll(bool only_changed) { return engine_->VaultAll(only_changed); }
  // Stops the engine, vaults every copy and marks it clean.
  Status Shutdown();

 private:
  ReplicationControl(platform::XenStore& xs, DomId self) : xs_(xs), self_(self) {}
  void HandlePromote(const Uuid& volume);
  void Put(std::map<std::string, std::string>* batch, const std::string& path, std::string value,
           bool force);

  platform::XenStore& xs_;
  const DomId self_;
  std::unique_ptr<replication::Engine> engine_;
  std::map<std::string, std::string> published_;     // path -> last value written
  Nanos counters_at_{-1};                            // when counters were last published
  std::map<std::string, uint64_t> promote_handled_;  // uuid -> last request passed on
};

}  // namespace vnvram::backend
