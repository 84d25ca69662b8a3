// RawXsClient: test support that speaks xs_wire.h directly on a Unix socket,
// for what libxenstore will not send (garbage, oversize headers, unknown
// types, INTRODUCE/RELEASE from tests outside platform/xen). Blocking calls
// with deadlines; one thread at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "platform/sim/xenstored/xs_message.h"

namespace vnvram::sim::testing {

struct RawMessage {
  XsHeader hdr;
  std::string payload;
};

class RawXsClient {
 public:
  static Result<std::unique_ptr<RawXsClient>> Connect(const std::string& socket_path);
  ~RawXsClient();

  // Sends raw bytes as they are.
  Status SendBytes(std::string_view bytes);
  // Sends one well-formed message (payload may exceed the limit on purpose).
  Status Send(uint32_t type, std::string_view payload, uint32_t tx_id = 0, uint32_t req_id = 7);
  // The next message; kUnavailable when the daemon closed the connection,
  // kTimeout after `deadline`.
  Result<RawMessage> Receive(std::chrono::milliseconds deadline = std::chrono::seconds(5));
  // Send then receive the next non-WATCH_EVENT message (events are kept).
  Result<RawMessage> Call(uint32_t type, std::string_view payload, uint32_t tx_id = 0);
  // True once the daemon closed the connection (waits up to `deadline`,
  // discarding anything it still sends).
  bool ClosedByPeer(std::chrono::milliseconds deadline = std::chrono::seconds(5));

 private:
  RawXsClient() = default;
  int fd_ = -1;
  std::string in_;
};

// "a\0b\0" from {"a", "b"}.
std::string XsArgs(std::initializer_list<std::string_view> args);

}  // namespace vnvram::sim::testing
