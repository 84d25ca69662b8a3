// Test support for vnvramd's black-box tests on the sim platform: vnvramd
// as a child process, the toolstack's attach/detach, and a (possibly
// hostile) frontend on the platform API. Waits are on events with
// deadlines. One object per thread; not thread-safe.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/parse.h"
#include "common/result.h"
#include "frontend/ring_client.h"
#include "platform/platform.h"
#include "xenstore-schema/schema.h"

namespace vnvram::backend::testing {

using std::chrono::milliseconds;
inline constexpr milliseconds kWait{10000};

// build/bin/vnvramd serving `sim_dir` as domain `self`.
class VnvramdProcess {
 public:
  struct Options {
    std::string sim_dir;
    DomId self = 0;
    std::string vault_dir;
    std::string log_path;
    std::vector<std::string> extra_args;
    std::vector<std::string> extra_env;  // "NAME=value", over ours
  };
  // Starts it and waits for its ready byte.
  static Result<std::unique_ptr<VnvramdProcess>> Start(Options options);
  // SIGKILL if still running.
  ~VnvramdProcess();

  pid_t pid() const { return pid_; }
  Status Signal(int sig);
  // SIGTERM and wait; returns the exit code (-1 when killed by a signal).
  Result<int> Stop(milliseconds deadline = kWait);
  // SIGKILL and reap.
  void Kill();
  std::string Log() const;

 private:
  VnvramdProcess() = default;
  Options options_;
  pid_t pid_ = -1;
  bool reaped_ = false;
};

// A device as the toolstack creates it.
struct DeviceSpec {
  DomId frontend = 1;
  DevId dev = 0;
  DomId backend = 0;
  Uuid volume;
  uint64_t size = 1 << 20;
};

// Writes both directories (libxl's permissions) in one transaction, and
// removes them; detach writes online = 0 and state = Closing first.
class Toolstack {
 public:
  explicit Toolstack(platform::XenStore& xs) : xs_(xs) {}
  Status Attach(const DeviceSpec& d);
  Status BeginDetach(const DeviceSpec& d);
  Status Remove(const DeviceSpec& d);

 private:
  platform::XenStore& xs_;
};

// Waits until `path` holds a value for which `pred` is true (watching it);
// returns that value. kTimeout with the last value seen.
Result<std::string> WaitForValue(platform::XenStore& xs, const std::string& path,
                                 const std::function<bool(const std::string&)>& pred,
                                 milliseconds deadline = kWait);
Result<std::string> WaitForValue(platform::XenStore& xs, const std::string& path,
                                 std::string_view want, milliseconds deadline = kWait);
// Waits until `path` does not exist.
Status WaitForRemoval(platform::XenStore& xs, const std::string& path,
                      milliseconds deadline = kWait);

// The transport keys a TestFrontend publishes; fields left empty get
// correct values, set ones are written as given (hostile cases).
struct TransportOverrides {
  std::optional<std::string> ring_page_order;
  std::optional<std::string> ring_ref;  // ring-ref (order 0) or ring-ref0
  std::optional<std::string> event_channel;
  std::optional<std::string> protocol;
};

class TestFrontend {
 public:
  // Acts as domain spec.frontend of the sim host in `sim_dir`.
  static Result<std::unique_ptr<TestFrontend>> Open(const std::string& sim_dir,
                                                    const DeviceSpec& spec);
  ~TestFrontend();

  platform::XenStore& xs() { return *xs_; }
  platform::GrantSharer& sharer() { return *sharer_; }
  std::string BeKey(std::string_view key) const;
  std::string FeKey(std::string_view key) const;

  Result<std::string> WaitBackendState(schema::XenbusState s, milliseconds deadline = kWait);
  // Shares a ring of 1 << order pages, binds an unbound port, publishes
  // the keys (with `o` applied) and state Initialised.
  Status Publish(uint32_t order = 0, const TransportOverrides& o = {});
  // Publish(), wait Connected, map the page directory and the region, go
  // Connected.
  Status Connect(uint32_t order = 0);
  // Maps the page directory and the region the backend published.
  Status MapRegion();
  Status SetState(schema::XenbusState s);
  // Drops the ring, event channel and mappings (as a crashed guest would).
  void DropTransport();

  std::span<std::byte> region() { return region_ ? region_->data() : std::span<std::byte>(); }
  frontend::RingClient& ring() { return *client_; }
  vnvramif_sring_t* sring();
  void Kick();
  // One request through the ring, waiting on the event channel.
  Result<frontend::Completion> Call(const vnvramif_request& req, milliseconds deadline = kWait);
  Result<frontend::Completion> Persist(uint64_t offset, uint64_t length);

 private:
  TestFrontend() = default;
  DeviceSpec spec_;
  std::unique_ptr<platform::Platform> platform_;
  std::unique_ptr<platform::XenStore> xs_;
  std::unique_ptr<platform::GrantSharer> sharer_;
  std::unique_ptr<platform::GrantMapper> mapper_;
  std::unique_ptr<platform::EventChannels> evtchn_;
  std::unique_ptr<platform::SharedPages> ring_pages_;
  std::unique_ptr<frontend::RingClient> client_;
  std::optional<platform::EvtchnPort> port_;
  std::unique_ptr<platform::GrantMapping> dir_;
  std::unique_ptr<platform::GrantMapping> region_;
};

}  // namespace vnvram::backend::testing
