// XenbusBackend: the backend half of one vnvram device BackendDir(B, F,
// devid): the xenbus state machine, the device's region, its ring worker
// while connected, and its statistics. Control thread only; the worker
// reports a fenced ring through DeviceEnv::wake.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "backend/activation.h"
#include "backend/daemon_config.h"
#include "backend/frontend_transport.h"
#include "backend/ring_stats.h"
#include "backend/ring_worker.h"
#include "backend/volume_registry.h"
#include "common/log.h"
#include "common/parse.h"
#include "common/result.h"
#include "platform/platform.h"
#include "xenstore-schema/schema.h"

namespace vnvram::backend {

// What every device shares; owned by the daemon, outlives the devices.
struct DeviceEnv {
  platform::Platform& platform;
  platform::XenStore& xs;
  platform::GrantMapper& mapper;
  VolumeRegistry& volumes;
  const DaemonConfig& config;
  // Wakes the control thread; called by ring workers (any thread).
  std::function<void()> wake;
  // Activations of replicated volumes (empty without --cluster).
  Activator activate;
};

// The backend state machine. The frontend's state drives it;
// FrontendChanged() is the one switch, each case naming the race it handles.
//
//              (toolstack: state = 1)
//                 Initialising
//                      | Setup(): region acquired (held / vault / new) and
//                      | granted, page directory built, features published
//                      v        (one transaction, with state)
//      +-------->  InitWait  <-----------------------------+
//      |               | frontend Initialised: keys valid,  |
//      |               | ring mapped, event channel bound   | frontend Initialising
//      |               v                                    | (re-initialised):
//      |           Connected  ------------------------------+ Disconnect()
//      |               |
//      |               | frontend Closing, ring fenced, fatal error
//      |               v
//      |            Closing  (error written first when fatal)
//      |               | frontend Closed / gone
//      |               v
//      +-----------  Closed   <-- online = 0 from any state (Disconnect())
//   frontend Initialising, online = 1: Setup() again, same region
//
// Closed is checked against the state node, not only our own state: with
// online = 0 (or a frontend Closed or gone) a Closing the toolstack wrote
// over our Closed is answered with Closed again, so a detach never waits
// for a transition that already happened.
//
// Any failure while setting up or connecting is a fatal device error: the
// message goes to the backend's `error` node and the device goes Closing
// (stays Closed when it was Closed); the daemon keeps serving every other
// device. Disconnect() is idempotent.
class XenbusBackend {
 public:
  using State = schema::XenbusState;

  XenbusBackend(DeviceEnv& env, DomId frontend, DevId dev);
  // Disconnects and releases the region.
  ~XenbusBackend();
  XenbusBackend(const XenbusBackend&) = delete;
  XenbusBackend& operator=(const XenbusBackend&) = delete;

  // Adopts what an earlier instance of vnvramd left in the backend
  // directory: Closing/Closed are kept, anything else starts over at
  // Initialising (stale keys are replaced with new grants by Setup()).
  void Adopt();

  // Something in the backend or frontend directory changed (or the daemon
  // rescans): reads both ends and acts. Never throws; errors become fatal
  // device errors.
  void Refresh();

  // A ring worker woke the control thread: fences the device when its ring
  // misbehaved.
  void CheckWorker();

  // Writes the statistics when they changed since the last time (always
  // with `force`).
  void PublishStats(bool force);

  // Writes role, epoch, replication-state and primary-link when they
  // changed (always with `force`); called whenever the engine's state moves.
  void PublishReplication(bool force);

  // Writes the outcome of an activation that arrived from the engine's
  // thread, if any (activate-result, activate-message, then activated).
  void CheckActivation();

  // The backend directory is gone: disconnects and releases the region.
  void Remove();

  // Daemon shutdown: stops the ring (so the region is quiet for the final
  // vault) and leaves xenstore as it is; the next instance republishes.
  void Quiesce() { Disconnect(); }

  State state() const { return state_; }
  DomId frontend_id() const { return frontend_; }
  DevId dev() const { return dev_; }
  const std::string& log_prefix() const { return log_.prefix(); }

 private:
  // The switch on the frontend's state.
  void FrontendChanged(State fe);
  // Reads the toolstack's keys once (frontend, frontend-id, volume).
  Status Probe();
  // Acquires the region and publishes features; goes InitWait.
  Status Setup();
  Result<FrontendTransport> ReadTransport();
  // Maps the ring, binds the event channel, starts the worker; Connected.
  Status ConnectRing(const FrontendTransport& t);
  void Disconnect();
  // After a failed connect: true when the frontend left Initialised or
  // published other transport keys meanwhile (a race, not an attack).
  bool FrontendMovedOn(const FrontendTransport& t);
  // Writes `s` unless it is our state already (watches fire on change only).
  Status SwitchState(State s);
  // Makes the published state node `s`, comparing with the node itself (the
  // toolstack writes it too): writes only when it differs. Idempotent.
  Status EnsureState(State s);
  // Writes `kv` in one transaction, only while the toolstack's directory
  // still exists (so a late write never re-creates a removed device).
  Status WriteKeys(const std::vector<std::pair<std::string, std::string>>& kv);
  void Fatal(const Status& why);
  // True when the frontend's Initialised answers this publication: its
  // backend-handshake equals handshake_, or it writes none (an older
  // frontend). False for an answer to an earlier publication (a frontend
  // that mapped the grants of an earlier instance) or a bad value.
  bool InitialisedIsOurs();
  Result<State> ReadFrontendState();
  // Reads the frontend's activate request; starts an activation for a new
  // request number (docs/multipath.md).
  void CheckActivateRequest();
  void WriteActivation(uint64_t request, const ActivationOutcome& o);
  std::string Key(std::string_view key) const;
  std::string FeKey(std::string_view key) const;

  DeviceEnv& env_;
  const DomId self_;
  const DomId frontend_;
  const DevId dev_;
  const log::Context log_;

  State state_ = State::kInitialising;
  bool probed_ = false;
  bool setup_blocked_ = false;  // a re-setup from Closed failed for this restart
  Uuid volume_;
  std::optional<uint64_t> size_;
  std::shared_ptr<VolumeRegion> region_;
  std::unique_ptr<RingWorker> worker_;
  FrontendTransport connected_;  // valid while worker_
  // This publication's handshake value (schema key `handshake`), new with
  // every Setup(): a frontend's Initialised is ours only when it echoes it.
  uint64_t handshake_ = 0;
  std::optional<std::vector<std::pair<std::string, std::string>>> last_stats_;
  LatencyHistogram prev_latency_;  // cumulative histogram at the last publication
  uint64_t latency_p50_ns_ = 0;    // last published interval figures
  uint64_t latency_p99_ns_ = 0;
  uint64_t latency_max_ns_ = 0;
  std::optional<std::vector<std::pair<std::string, std::string>>> last_repl_;

  // Activation outcomes travel from the engine's thread to ours here; the
  // box outlives the device when an outcome comes late.
  struct ActivationBox {
    std::mutex mu;
    std::optional<std::pair<uint64_t, ActivationOutcome>> pending;
  };
  std::shared_ptr<ActivationBox> activation_ = std::make_shared<ActivationBox>();
  uint64_t activate_seen_ = 0;  // highest request number taken (or present at adoption)
};

}  // namespace vnvram::backend
