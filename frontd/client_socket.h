// ClientSocket: one NBD client's connected socket (non-blocking), read and
// written whole frames at a time. Every wait is a poll(2) on the socket and
// on the daemon's stop eventfd: the wait for the first byte of a request may
// last forever (an idle client is legitimate) and ends when the daemon
// stops; every other wait is bounded by a deadline, cut to a short grace
// once the daemon stops, so a slow or stalled client only ever holds its own
// session. Owns the fd. One session thread uses it; not thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <span>

#include "common/clock.h"
#include "common/status.h"
#include "common/unique_fd.h"

namespace vnvram::frontd {

class ClientSocket {
 public:
  // `stop_fd` (not owned) becomes readable when the daemon stops; -1: never.
  // Takes ownership of `fd`.
  ClientSocket(int fd, int stop_fd, std::chrono::milliseconds stop_grace);

  int fd() const { return fd_.get(); }

  // Waits until a byte can be read, with no deadline. kAborted once the
  // daemon stops (bytes that came with the stop are still taken: at most
  // one more request); OK also at EOF (the next read reports it).
  Status WaitIdle();
  // Reads exactly dst.size() bytes before `deadline`. kUnavailable at EOF,
  // kTimeout past the deadline, kIoError for a socket error; `received`
  // (optional) tells how many bytes came (0 with kUnavailable: the client
  // closed between frames).
  Status ReadExact(std::span<std::byte> dst, const Deadline& deadline, size_t* received = nullptr);
  // Reads and drops `length` bytes (the payload of a refused WRITE).
  Status Discard(uint64_t length, const Deadline& deadline);
  // Writes all of `src` before `deadline` (a client that stops reading its
  // replies is cut off then).
  Status WriteAll(std::span<const std::byte> src, const Deadline& deadline);
  // Closes both directions now.
  void Shutdown();

  // True once the stop eventfd was seen readable.
  bool stopping() const { return stop_seen_.has_value(); }

 private:
  // Polls for `events` on the socket until `deadline` (nullptr: none).
  // Returns kOk when ready, kTimeout, or kAborted when idle and stopping.
  Status Wait(short events, const Deadline* deadline);

  UniqueFd fd_;
  int stop_fd_;
  std::chrono::milliseconds stop_grace_;
  std::optional<Deadline> stop_seen_;  // the grace deadline once stopping
};

}  // namespace vnvram::frontd
