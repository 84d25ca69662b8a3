// FrontendTransport: the transport keys a frontend publishes for the ring
// (ring-page-order, ring-ref / ring-ref<i>, event-channel, protocol), read
// and range-checked as hostile input. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/parse.h"
#include "common/result.h"
#include "platform/grant.h"

namespace vnvram::backend {

struct FrontendTransport {
  uint32_t ring_order = 0;
  std::vector<platform::GrantRef> ring_refs;  // 1 << ring_order refs
  platform::EvtchnPort port = 0;              // never 0
  bool operator==(const FrontendTransport&) const = default;
};

// Returns the value of one key of the frontend directory (kNotFound when
// absent; any other error is passed on).
using FrontendKeyReader = std::function<Result<std::string>(std::string_view key)>;

// Reads and checks every transport key, in this order, each at most once:
// ring-page-order absent (0) or a decimal <= `max_order` (itself capped at
// VNVRAMIF_MAX_RING_PAGE_ORDER); ring-ref (order 0) or ring-ref0..N-1 (and
// no other), each a 32-bit decimal; event-channel a non-zero 32-bit
// decimal; protocol absent or one of the schema's values. The first bad key
// is the one reported: kInvalidArgument (a one-line message naming the key,
// with the bad value shown printable and shortened) or the reader's error
// (with the key as context).
Result<FrontendTransport> ReadFrontendTransport(const FrontendKeyReader& read, uint32_t max_order);

}  // namespace vnvram::backend
