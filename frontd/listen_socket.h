// The listening sockets of vnvram-frontd: a Unix stream socket at a path
// (mode 0600; a stale socket file left by a crashed run is replaced, a live
// one or any other file is refused) and TCP on a loopback address only.
// Stateless functions; thread-safe.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace vnvram::frontd {

struct LoopbackAddress {
  int family = AF_INET;  // AF_INET (127.0.0.1) or AF_INET6 (::1)
  uint16_t port = 0;     // 0: an ephemeral port
  // "127.0.0.1" or "[::1]", as it appears in "tcp:<host>:<port>".
  std::string HostForDisplay() const;
};

// "127.0.0.1:P", "localhost:P" (127.0.0.1), "[::1]:P" or "::1:P"; P is a
// decimal port, 0 for an ephemeral one. Any other host is refused.
Result<LoopbackAddress> ParseLoopbackAddress(std::string_view spec);

// A listening Unix stream socket at `path`; the fd is the caller's.
Result<int> ListenUnix(const std::string& path);
// A listening TCP socket on the address; the fd is the caller's, `*port`
// the port bound (the ephemeral one when the address asked for 0).
Result<int> ListenTcp(const LoopbackAddress& address, uint16_t* port);

}  // namespace vnvram::frontd
