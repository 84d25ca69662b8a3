// Message: the typed model of one replication frame, with Encode (model to
// bytes) and Decode (untrusted bytes to model). Decode checks the
// signature, version, type, flags and every length before it reads or
// allocates, rejects trailing bytes and checks data CRCs; encoding is
// canonical, so Encode(Decode(f)) == f for every frame f that decodes.
// Layouts are in wire_format.h. Value types and pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "backend/replication/wire_format.h"
#include "common/parse.h"
#include "common/result.h"

namespace vnvram::replication {

using Bytes = std::vector<std::byte>;

struct Hello {
  std::string host_id;                 // 1..64 of [A-Za-z0-9._-]
  uint64_t incarnation = 0;            // random per process start; tells restarts apart
  uint32_t max_data = wire::kMaxData;  // the largest data this host accepts
  bool operator==(const Hello&) const = default;
};

struct HelloAck {
  std::string host_id;
  uint64_t incarnation = 0;
  uint32_t max_data = wire::kMaxData;
  bool operator==(const HelloAck&) const = default;
};

// One range of a volume at (epoch, sequence). The CRC-32C of `data` is a
// wire field: Encode computes it and Decode verifies it.
struct Replicate {
  Uuid volume;
  uint64_t epoch = 0;     // >= 1
  uint64_t sequence = 0;  // >= 1
  uint64_t offset = 0;    // offset + data.size() does not wrap
  bool ack_requested = false;
  Bytes data;  // 1..max_data bytes
  bool operator==(const Replicate&) const = default;
};

struct Ack {
  Uuid volume;
  uint64_t epoch = 0;  // the replica's epoch after handling the frame
  uint64_t acked_sequence = 0;
  wire::AckStatus status = wire::AckStatus::kOk;
  bool operator==(const Ack&) const = default;
};

struct Gap {
  Uuid volume;
  uint64_t epoch = 0;
  uint64_t expected_sequence = 0;  // the next sequence the replica can apply
  uint64_t received_sequence = 0;  // the one that arrived instead (> expected)
  bool operator==(const Gap&) const = default;
};

struct Heartbeat {
  uint64_t incarnation = 0;
  uint64_t counter = 0;
  bool operator==(const Heartbeat&) const = default;
};

struct EpochPropose {
  Uuid volume;
  uint64_t proposed_epoch = 0;  // >= 1
  uint64_t last_epoch = 0;      // the candidate's state: last applied (epoch, sequence)
  uint64_t last_sequence = 0;
  std::string candidate;  // host id
  bool takeover = false;  // flag kFlagTakeover
  bool operator==(const EpochPropose&) const = default;
};

struct EpochAccept {
  Uuid volume;
  uint64_t epoch = 0;  // the accepted (now promised) epoch
  uint64_t last_epoch = 0;
  uint64_t last_sequence = 0;
  bool operator==(const EpochAccept&) const = default;
};

struct EpochReject {
  Uuid volume;
  uint64_t proposed_epoch = 0;
  uint64_t promised_epoch = 0;  // the highest epoch this voter promised
  uint64_t last_epoch = 0;
  uint64_t last_sequence = 0;
  wire::RejectReason reason = wire::RejectReason::kStaleEpoch;
  bool operator==(const EpochReject&) const = default;
};

struct ResyncRequest {
  Uuid volume;
  uint64_t epoch = 0;
  uint64_t since_sequence = 0;  // 0: full copy
  uint32_t chunk_size = 0;      // power of two, kMinResyncChunk..max_data
  bool operator==(const ResyncRequest&) const = default;
};

// Chunk `chunk_index` of the region (offset chunk_index * chunk_size) as of
// `as_of_sequence`; data is at most chunk_size bytes (the last chunk of a
// region may be shorter). CRC handled like Replicate's.
struct ResyncChunk {
  Uuid volume;
  uint64_t epoch = 0;
  uint64_t as_of_sequence = 0;
  uint32_t chunk_size = 0;
  uint32_t chunk_index = 0;
  bool last = false;
  Bytes data;
  bool first = false;  // a resync run starts here (wire::kFlagFirstChunk)
  bool operator==(const ResyncChunk&) const = default;
};

struct ResyncDone {
  Uuid volume;
  uint64_t epoch = 0;
  uint64_t sequence = 0;  // the replica is in sync as of this sequence
  uint32_t chunks_sent = 0;
  bool operator==(const ResyncDone&) const = default;
};

struct Inspect {
  Uuid volume;
  uint64_t offset = 0;
  uint32_t length = 0;  // 1..max_data; offset + length does not wrap
  bool operator==(const Inspect&) const = default;
};

struct InspectReply {
  Uuid volume;
  uint64_t epoch = 0;
  uint64_t sequence = 0;  // the host's applied sequence when it read
  uint64_t offset = 0;
  Bytes data;  // 0..max_data bytes (0 when the range was refused)
  bool operator==(const InspectReply&) const = default;
};

struct Invalid {
  wire::InvalidReason reason = wire::InvalidReason::kMalformed;
  std::string text;  // 0..256 printable ASCII
  bool operator==(const Invalid&) const = default;
};

using Message = std::variant<Hello, HelloAck, Replicate, Ack, Gap, Heartbeat, EpochPropose,
                             EpochAccept, EpochReject, ResyncRequest, ResyncChunk, ResyncDone,
                             Inspect, InspectReply, Invalid>;

// The wire type of a message.
wire::MessageType TypeOf(const Message& m);
// "REPLICATE", "EPOCH_PROPOSE", ...; "UNKNOWN" for a byte outside the table.
std::string_view TypeName(uint8_t type);

struct Limits {
  // Largest data accepted in one frame; at most wire::kMaxData.
  uint32_t max_data = wire::kMaxData;
};

// The fixed header, checked: signature, version, known type, zero reserved
// field, body length <= what the type and limits allow. Lets a receiver
// refuse a frame (and say why) from its first 16 bytes.
struct Header {
  wire::MessageType type;
  uint16_t flags;
  uint32_t body_length;
};
Result<Header> DecodeHeader(std::span<const std::byte> frame, const Limits& limits = {});

// Decodes one whole frame from an untrusted peer. Errors (one line, naming
// the field): kInvalidArgument for a malformed frame, kNotSupported for
// another protocol version, kResourceExhausted for a length above the
// limits, kCorruption for a data CRC mismatch.
Result<Message> Decode(std::span<const std::byte> frame, const Limits& limits = {});

// Encodes a message. Fails with kInvalidArgument when the model breaks a
// rule Decode enforces (a bad host id, empty data, ...), so that nothing is
// sent that a peer would refuse.
Result<Bytes> Encode(const Message& m, const Limits& limits = {});

// Encode(Replicate{volume, epoch, sequence, offset, ack_requested, data})
// without copying `data` into a message first (the persist path).
Result<Bytes> EncodeReplicate(const Uuid& volume, uint64_t epoch, uint64_t sequence,
                              uint64_t offset, bool ack_requested, std::span<const std::byte> data,
                              const Limits& limits = {});

}  // namespace vnvram::replication
