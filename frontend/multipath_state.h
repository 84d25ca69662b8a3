// MultipathState: the guest's multipath directory of one volume,
// MultipathDir(F, vol): what libvnvram publishes there (active path,
// health, epoch, the progress and outcome of failovers) and the operator
// failover requests nvram-tool writes there. The toolstack creates the
// directory; without it the group still works, unpublished. Not
// thread-safe: the Device serialises calls.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/log.h"
#include "common/parse.h"
#include "common/result.h"
#include "platform/platform.h"
#include "xenstore-schema/schema.h"

namespace vnvram::frontend {

// An operator's failover request, as read (and range-checked) from xenstore.
struct FailoverRequest {
  uint64_t number = 0;
  std::optional<DevId> target;
  bool force = false;
  std::chrono::milliseconds timeout{10000};
};

// What a failover came to, for the outcome keys.
struct FailoverOutcome {
  uint64_t request = 0;     // 0: automatic
  std::string_view result;  // schema::mp::kFailoverResult* value
  std::string_view reason;  // schema::mp::kFailoverReason* value
  std::optional<DevId> from;
  std::optional<DevId> to;
  uint64_t duration_us = 0;
  std::string message;
};

class MultipathState {
 public:
  // Opens a xenstore handle and, when the directory exists, watches its
  // failover/request key. enabled() is false without the directory.
  static Result<std::unique_ptr<MultipathState>> Open(platform::Platform& platform,
                                                      const Uuid& volume);
  ~MultipathState();
  MultipathState(const MultipathState&) = delete;
  MultipathState& operator=(const MultipathState&) = delete;

  bool enabled() const { return enabled_; }
  int watch_fd() { return xs_->WatchFd(); }
  // Drains watch events; true when any fired.
  Result<bool> Drain();

  // A request newer than any taken before (and than failover/completed at
  // open), or nullopt. A malformed request is answered at once with result
  // error and a message naming the bad key, and not returned.
  std::optional<FailoverRequest> TakeRequest();

  // Writes active-path (removed when nullopt), status and epoch when they
  // changed.
  void Publish(std::optional<DevId> active, std::string_view status, uint64_t epoch);
  void SetFailoverState(std::string_view state);
  // The final state (done or failed) and the outcome keys in one
  // transaction, so that a reader never sees the state without its result;
  // failover/completed last, on its own (waiters watch it).
  void Report(const FailoverOutcome& o, std::string_view final_state);

 private:
  MultipathState(DomId self, const Uuid& volume, std::unique_ptr<platform::XenStore> xs);
  std::string Key(std::string_view k) const { return schema::MultipathKey(self_, volume_, k); }
  // Writes `kv` (removing keys whose value is nullopt) in one transaction,
  // only while the directory exists.
  Status Write(const std::map<std::string, std::optional<std::string>>& kv);

  const DomId self_;
  const Uuid volume_;
  const std::unique_ptr<platform::XenStore> xs_;
  const log::Context log_;
  bool enabled_ = false;
  bool watching_ = false;
  uint64_t taken_ = 0;  // highest request number taken or completed
  std::map<std::string, std::optional<std::string>> published_;
};

}  // namespace vnvram::frontend
