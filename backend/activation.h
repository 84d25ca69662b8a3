// Activation: what a frontend path's `activate` request asks of its
// backend (become the serving primary of the volume) and what it came to,
// as the xenbus control plane sees it; the replication engine does the
// work (ReplicationControl adapts). Plain value types; no threads.
#pragma once

#include <functional>
#include <string>

#include "common/parse.h"

namespace vnvram::backend {

struct ActivationOutcome {
  enum class Result : uint8_t { kOk, kWaitingResync, kNoMajority, kFailed };
  Result result = Result::kOk;
  std::string message;  // one line when not kOk
  bool final() const { return result != Result::kWaitingResync; }
};

using ActivationDone = std::function<void(const ActivationOutcome&)>;

// Starts an activation of `volume` (`force`: the old primary may be gone);
// `done` may run on any thread, possibly more than once (progress, then the
// final outcome). False when the volume is not replicated by this daemon:
// a local volume's only backend is always its primary.
using Activator = std::function<bool(const Uuid& volume, bool force, ActivationDone done)>;

}  // namespace vnvram::backend
