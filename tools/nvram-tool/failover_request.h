// FailoverRequest: what `nvram-tool failover` does. Operator failover is
// coordinated through the guest's multipath directory of the volume
// (schema tree "multipath"): the tool writes failover/target (or removes it:
// best standby), failover/force, failover/timeout-ms and failover/request,
// the next request number, in one transaction; the frontend (libvnvram in
// the guest) acts and writes the outcome keys, ending with
// failover/completed = the request number. The tool waits on a xenstore
// watch (never a sleep) for timeout + 2 s, then reads the outcome.
//
// Everything the frontend wrote is untrusted guest input: parsed strictly,
// and the one-line message made printable before anyone prints it.
// Stateless functions; thread-safe as the XenStore handle they are given.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>

#include "common/clock.h"
#include "common/parse.h"
#include "common/result.h"
#include "platform/xenstore.h"

namespace vnvram::tools {

struct FailoverSpec {
  DomId domain = 0;
  // The volume, or the devid of one of its paths in `domain`.
  std::variant<Uuid, DevId> volume;
  // The path to fail over to; nullopt: the frontend picks the best standby.
  std::optional<DevId> to;
  // How long the frontend tries (written as failover/timeout-ms); the tool
  // waits 2 s more for its answer. 1 s .. 3600 s.
  std::chrono::seconds timeout{10};
  bool force = false;
};

struct FailoverOutcome {
  DomId domain = 0;
  Uuid volume;
  uint64_t request = 0;
  // false: the frontend did not answer within timeout + 2 s (message says
  // so); the request stays written.
  bool answered = false;
  std::string result;  // failover/result as written (made printable), "" if absent
  std::string reason;  // failover/reason, "" if absent
  std::optional<DevId> from;
  std::optional<DevId> to;
  std::optional<uint64_t> duration_us;
  std::string message;  // failover/message, printable, at most 256 bytes

  // Answered with result ok.
  bool ok() const;
};

// Checks the request against xenstore and sends it, then waits for the
// outcome. Errors (nothing written unless said): kNotFound for an unknown
// domain, a devid that is not a vnvram device of the domain, or a volume
// without a multipath directory there; kInvalidArgument for a --to that is
// not a path of the volume in the domain, or a bad spec; other codes for
// xenstore failures. A frontend that answers (any result) or does not
// answer in time is an outcome, not an error.
Result<FailoverOutcome> RequestFailover(platform::XenStore& xs, const FailoverSpec& spec,
                                        const Clock& clock = SystemClock::Instance());

// "failover of volume U (domain 3): ok, path 0 -> 1 in 23.4 ms", or the
// result with the frontend's message, or the no-answer message.
std::string FormatFailoverLine(const FailoverOutcome& o);
// The same as one JSON object (no newline): domain, volume, request,
// answered, result, reason, from, to, duration_us, message.
std::string FormatFailoverJson(const FailoverOutcome& o);

}  // namespace vnvram::tools
