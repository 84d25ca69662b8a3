// XenbusFrontend: the frontend half of one vnvram device's xenbus control
// plane: the platform handles, the identity of the device (self, backend,
// devid, volume), the watch on the backend's state, and the handshake that
// turns "backend InitWait" into a live Connection (ring granted, event
// channel bound, region mapped). The backend is untrusted: every value it
// published is range-checked before use. Not thread-safe: the owner (the
// Device) serialises calls.
//
// Frontend state machine (ours; the backend's drives it):
//
//   any --Connect()--> Initialising --backend InitWait, keys valid,
//                         ^             ring + evtchn published--> Initialised
//                         |                                              |
//   backend Closing: Closed, then Initialising once it is Closed        |
//                                                   backend Connected    v
//                                                                    Connected
//   Close(): Closing --backend Closing/Closed or gone--> Closed
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/log.h"
#include "common/parse.h"
#include "common/result.h"
#include "frontend/backend_geometry.h"
#include "frontend/region_mapper.h"
#include "frontend/ring_client.h"
#include "platform/platform.h"
#include "xenstore-schema/schema.h"

namespace vnvram::frontend {

using XenbusState = schema::XenbusState;

// One live connection: everything the handshake allocated or mapped.
// Destroying it unbinds the port, frees the ring and unmaps the region.
struct Connection {
  platform::EventChannels* evtchn = nullptr;  // not owned
  BackendGeometry geometry;
  uint32_t ring_page_order = 0;
  std::unique_ptr<platform::SharedPages> ring_pages;
  std::unique_ptr<RingClient> ring;
  platform::EvtchnPort port = 0;
  MappedRegion region;

  Connection() = default;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();
};

// What woke WaitForActivity().
struct Activity {
  bool event = false;  // the connection's port had an event (now unmasked)
  bool watch = false;  // a xenstore watch fired (events drained)
};

class XenbusFrontend {
 public:
  // Opens the handles of `platform`, reads the toolstack's keys of device
  // `dev` (backend-id, backend, volume: strictly) and watches the
  // backend's state. kNotFound when the device directory does not exist.
  static Result<std::unique_ptr<XenbusFrontend>> Open(platform::Platform& platform, DevId dev);

  // The lowest devid among this domain's vnvram devices whose volume is
  // `volume`; kNotFound when none is.
  static Result<DevId> FindDeviceByVolume(platform::Platform& platform, const Uuid& volume);
  // Every devid of this domain whose volume is `volume`, ascending (empty
  // when none is).
  static Result<std::vector<DevId>> FindDevicesByVolume(platform::XenStore& xs, DomId self,
                                                        const Uuid& volume);
  ~XenbusFrontend();

  // The whole handshake, from writing Initialising to Connected, within
  // `deadline`. `want_order`: ring-page-order wanted (capped by the
  // backend's max-ring-page-order). kTimeout naming the state reached,
  // kUnavailable when the device is offline or the backend closed it (its
  // error node quoted), kCorruption when it published bad values.
  Result<std::unique_ptr<Connection>> Connect(uint32_t want_order, const Deadline& deadline);

  // Closing dance: Closing, wait for the backend to be Closing/Closed (or
  // gone, or offline) within `deadline`, then Closed. The caller drops its
  // Connection between the two (in `release`). Without `wait_for_backend`
  // (a backend we no longer trust) Closed follows Closing at once.
  Status Close(const Deadline& deadline, const std::function<void()>& release,
               bool wait_for_backend = true);

  // A fatal device error: writes the frontend's error node and Closing.
  void ReportFatal(const Status& why);

  // Blocks until the connection's port has an event, a watch fires or the
  // deadline passes (then both flags are false).
  Result<Activity> WaitForActivity(Connection* conn, const Deadline& deadline);
  // For callers that poll several paths at once: the fds to poll, then the
  // draining steps WaitForActivity does. TakeEvent unmasks what it reads.
  int watch_fd() { return xs_->WatchFd(); }
  int event_fd() { return evtchn_->Fd(); }
  Status DrainWatches(bool* fired);
  Result<bool> TakeEvent(Connection* conn);

  // A key of the backend directory: nullopt when absent (or unreadable
  // because the directory is gone).
  Result<std::optional<std::string>> ReadBackendKey(std::string_view key);
  // A key of our own directory (nullopt when absent).
  Result<std::optional<std::string>> ReadFrontendKey(std::string_view key);
  // Writes keys of our own directory in one transaction, never re-creating
  // a removed directory (kUnavailable then).
  Status WriteFrontendKeys(const std::vector<std::pair<std::string_view, std::string>>& kv);

  // The backend's state (kUnknown when its state node or directory is
  // gone); kCorruption for a value that is not a state.
  Result<XenbusState> BackendState();
  // The toolstack's online flag (absent counts as 0, as the backend reads it).
  Result<bool> BackendOnline();
  // The backend's error node, or "" when it has none.
  std::string BackendError();

  Status SetState(XenbusState s);
  XenbusState state() const { return state_; }

  DomId self() const { return self_; }
  DomId backend() const { return backend_; }
  DevId dev() const { return dev_; }
  const Uuid& volume() const { return volume_; }
  // path-priority (toolstack's; 0 when absent or unreadable).
  uint32_t priority() const { return priority_; }
  const log::Context& log() const { return log_; }

 private:
  XenbusFrontend(DomId self, DevId dev, std::unique_ptr<platform::XenStore> xs,
                 std::unique_ptr<platform::GrantSharer> sharer,
                 std::unique_ptr<platform::GrantMapper> mapper,
                 std::unique_ptr<platform::EventChannels> evtchn);

  std::string FeKey(std::string_view key) const;
  std::string BeKey(std::string_view key) const;
  Status ReadIdentity();
  // Waits for the backend to reach InitWait, doing the Closed/Initialising
  // steps a Closing or Closed backend needs.
  Status WaitForInitWait(const Deadline& deadline);
  Result<std::unique_ptr<Connection>> Publish(const BackendGeometry& g, uint32_t want_order);
  // Waits for the backend's Connected after our Initialised. `refused` is
  // set when it went Closing or Closed instead (online still 1). kAborted
  // when the backend's handshake is no longer `handshake` (the one whose
  // region we mapped): it published its region again, an earlier instance
  // having died during our handshake.
  Status WaitForConnected(const Deadline& deadline, const std::optional<uint64_t>& handshake,
                          bool* refused);

  // Constant after construction.
  const DomId self_;
  const DevId dev_;
  const std::unique_ptr<platform::XenStore> xs_;
  const std::unique_ptr<platform::GrantSharer> sharer_;
  const std::unique_ptr<platform::GrantMapper> mapper_;
  const std::unique_ptr<platform::EventChannels> evtchn_;
  DomId backend_ = 0;
  Uuid volume_;
  log::Context log_;
  uint32_t priority_ = 0;
  std::vector<std::string> watch_paths_;

  XenbusState state_ = XenbusState::kUnknown;  // what we last wrote
};

}  // namespace vnvram::frontend
