// NbdSession: one NBD client connection from greeting to close: the fixed
// newstyle negotiation (EXPORT_NAME, INFO, GO, LIST, ABORT; anything else
// NBD_REP_ERR_UNSUP), then the transmission phase with simple replies
// (READ, WRITE, FLUSH, TRIM, WRITE_ZEROES, DISC), requests served one at a
// time in arrival order over a BlockExport. Payloads stream through one
// bounded buffer. A client that breaks the protocol gets an error reply when
// one can be given and is disconnected when the stream cannot be trusted.
// One thread runs one session; the export is shared and thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/log.h"
#include "common/status.h"
#include "frontd/block_export.h"
#include "frontd/client_socket.h"
#include "frontd/nbd_protocol.h"

namespace vnvram::frontd {

struct SessionConfig {
  std::string export_name = "vnvram";  // "" from a client also selects it
  std::string description;             // NBD_INFO_DESCRIPTION
  uint32_t min_block = 1;
  uint32_t preferred_block = 4096;
  uint32_t max_payload = 32u << 20;  // largest READ/WRITE
  uint32_t chunk = 1u << 20;         // payload streaming unit (buffer size)
  // Every frame (option, request header + payload, reply) must move within
  // this; the wait for the next request has no limit.
  std::chrono::milliseconds frame_timeout{30000};
  // Once the daemon stops, a frame in progress gets this much longer.
  std::chrono::milliseconds stop_grace{2000};
  uint32_t max_options = 256;  // options per negotiation
};

// Transmission flags of an export: flush, FUA, trim and write-zeroes when
// writable, read-only otherwise; CAN_MULTI_CONN always (FLUSH makes every
// connection's writes durable, all connections see one region).
uint16_t TransmissionFlags(const BlockExport& exp);

struct SessionStats {
  uint64_t options = 0;
  uint64_t requests = 0;
  uint64_t error_replies = 0;
  uint64_t bytes_read = 0;
  uint64_t bytes_written = 0;
  uint64_t flushes = 0;
};

class NbdSession {
 public:
  NbdSession(ClientSocket& socket, BlockExport& exp, const SessionConfig& config, log::Context log);

  // Serves the connection to its end, then shuts the socket down. OK: the
  // client left (NBD_OPT_ABORT, NBD_CMD_DISC, or closed between requests)
  // or the daemon stopped. Otherwise why the client was disconnected: it
  // broke the protocol (kInvalidArgument, kResourceExhausted), stalled mid
  // frame (kTimeout), or the connection failed.
  Status Run();
  const SessionStats& stats() const { return stats_; }

 private:
  enum class Next { kContinue, kTransmit, kEnd };

  Status Negotiate(bool* transmit);
  Result<Next> HandleOption(const nbd::OptionHeader& h, std::span<const std::byte> data);
  Status SendInfo(uint32_t option, const nbd::InfoRequest& req);
  Status Transmit();
  Status Serve(const nbd::Request& r, const Deadline& deadline);
  Status ServeRead(const nbd::Request& r, const Deadline& deadline);
  Status ServeWrite(const nbd::Request& r, const Deadline& deadline);
  Status ServeZero(const nbd::Request& r);
  Status Reply(uint64_t cookie, uint32_t error, const Deadline& deadline);
  Status Send(std::span<const std::byte> bytes, const Deadline& deadline);
  Deadline FrameDeadline() const;
  bool Matches(const std::string& name) const;
  std::vector<std::byte>& Buffer();

  ClientSocket& socket_;
  BlockExport& export_;
  const SessionConfig& config_;
  const log::Context log_;
  const nbd::ExportShape shape_;
  bool fixed_newstyle_ = false;
  bool no_zeroes_ = false;
  std::vector<std::byte> buffer_;  // allocated on first READ/WRITE
  SessionStats stats_;
};

// The NBD error for a failed export call.
uint32_t ErrorFor(const Status& s);

}  // namespace vnvram::frontd
