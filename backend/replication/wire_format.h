// Replication wire format, protocol version 1: the constants shared by the
// encoder and the decoder (backend/replication/message.h) and nothing else.
// The grammar, field by field, is in docs/replication.md ("Wire format").
// Constants only; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vnvram::replication::wire {

// Every frame (one ZeroMQ message part) is a fixed 16-byte header followed
// by `body_length` bytes of body. All integers are little-endian.
//
//   offset size field
//        0    4 signature    'V' 'N' 'R' 'P'
//        4    1 version      kVersion
//        5    1 type         MessageType
//        6    2 flags        per type; undefined bits must be zero
//        8    4 body_length  bytes after the header
//       12    4 reserved     must be zero
inline constexpr uint8_t kSignature[4] = {'V', 'N', 'R', 'P'};
inline constexpr uint8_t kVersion = 1;

inline constexpr size_t kSignatureOffset = 0;
inline constexpr size_t kVersionOffset = 4;
inline constexpr size_t kTypeOffset = 5;
inline constexpr size_t kFlagsOffset = 6;
inline constexpr size_t kBodyLengthOffset = 8;
inline constexpr size_t kReservedOffset = 12;
inline constexpr size_t kHeaderSize = 16;
static_assert(kReservedOffset + 4 == kHeaderSize);

enum class MessageType : uint8_t {
  kHello = 1,           // session open: who I am
  kHelloAck = 2,        // session accepted
  kReplicate = 3,       // primary -> replica: one range of one volume
  kAck = 4,             // replica -> primary: cumulative applied sequence
  kGap = 5,             // replica -> primary: a sequence is missing (NACK)
  kHeartbeat = 6,       // either way, after idleness
  kEpochPropose = 7,    // candidate -> group: make me primary of epoch e
  kEpochAccept = 8,     // voter -> candidate: promised, here is my state
  kEpochReject = 9,     // voter -> candidate: refused, here is why
  kResyncRequest = 10,  // replica -> primary: send me what I miss
  kResyncChunk = 11,    // primary -> replica: one chunk of the region
  kResyncDone = 12,     // primary -> replica: you are in sync as of seq
  kInspect = 13,        // tool -> host: read back a range of a volume
  kInspectReply = 14,   // host -> tool: the range, with its sequence
  kInvalid = 15,        // the last frame was refused; re-open the session
};
inline constexpr uint8_t kFirstType = 1;
inline constexpr uint8_t kLastType = 15;

// Flags.
inline constexpr uint16_t kFlagAckRequested = 0x0001;  // REPLICATE: ack after applying this one
inline constexpr uint16_t kFlagLastChunk = 0x0001;     // RESYNC_CHUNK: the last chunk of a resync
// RESYNC_CHUNK: the first chunk of a resync run. Nothing of the run comes
// before it on the stream; the replica counts the run from it, so that a
// frame the stream lost (a dropped connection) is noticed rather than
// vouched for by RESYNC_DONE.
inline constexpr uint16_t kFlagFirstChunk = 0x0002;
inline constexpr uint16_t kReplicateFlags = kFlagAckRequested;
inline constexpr uint16_t kResyncChunkFlags = kFlagLastChunk | kFlagFirstChunk;
// EPOCH_PROPOSE: the candidate takes over from a primary it believes gone;
// a voter that is, or reaches, a live primary other than the candidate
// rejects it (kPrimaryAlive).
inline constexpr uint16_t kFlagTakeover = 0x0001;
inline constexpr uint16_t kEpochProposeFlags = kFlagTakeover;

// Field sizes.
inline constexpr size_t kUuidSize = 16;
inline constexpr size_t kHostIdMax = 64;   // u8 length, then [A-Za-z0-9._-]
inline constexpr size_t kReasonMax = 256;  // u16 length, then printable ASCII

// Data limits. A frame's data (REPLICATE, RESYNC_CHUNK, INSPECT_REPLY) is at
// most kMaxData bytes; a host may configure a smaller maximum, announced in
// HELLO. The whole frame is at most kMaxFrameSize, checked before anything
// is allocated.
inline constexpr uint32_t kMaxData = 1u << 20;
inline constexpr uint32_t kMinResyncChunk = 4096;
inline constexpr size_t kMaxFixedBody = 128;  // larger than any fixed part
inline constexpr size_t kMaxFrameSize = kHeaderSize + kMaxFixedBody + kMaxData;

// Body layouts (fixed parts; `+ n` marks variable data).
//
// HELLO, HELLO_ACK: u8 host_len, host_id[host_len], u64 incarnation,
//                   u32 max_data
inline constexpr size_t kHelloFixed = 1 + 8 + 4;
// REPLICATE: uuid volume, u64 epoch, u64 sequence, u64 offset, u32 length,
//            u32 crc32c(data), data[length]
inline constexpr size_t kReplicateFixed = kUuidSize + 8 + 8 + 8 + 4 + 4;
static_assert(kReplicateFixed == 48);
// ACK: uuid volume, u64 epoch, u64 acked_sequence, u32 status
inline constexpr size_t kAckBody = kUuidSize + 8 + 8 + 4;
// GAP: uuid volume, u64 epoch, u64 expected_sequence, u64 received_sequence
inline constexpr size_t kGapBody = kUuidSize + 8 + 8 + 8;
// HEARTBEAT: u64 incarnation, u64 counter
inline constexpr size_t kHeartbeatBody = 8 + 8;
// EPOCH_PROPOSE: uuid volume, u64 proposed_epoch, u64 last_epoch,
//                u64 last_sequence, u8 host_len, host_id[host_len]
inline constexpr size_t kEpochProposeFixed = kUuidSize + 8 + 8 + 8 + 1;
// EPOCH_ACCEPT: uuid volume, u64 epoch, u64 last_epoch, u64 last_sequence
inline constexpr size_t kEpochAcceptBody = kUuidSize + 8 + 8 + 8;
// EPOCH_REJECT: uuid volume, u64 proposed_epoch, u64 promised_epoch,
//               u64 last_epoch, u64 last_sequence, u32 reason
inline constexpr size_t kEpochRejectBody = kUuidSize + 8 + 8 + 8 + 8 + 4;
// RESYNC_REQUEST: uuid volume, u64 epoch, u64 since_sequence, u32 chunk_size
inline constexpr size_t kResyncRequestBody = kUuidSize + 8 + 8 + 4;
// RESYNC_CHUNK: uuid volume, u64 epoch, u64 as_of_sequence, u32 chunk_size,
//               u32 chunk_index, u32 length, u32 crc32c(data), data[length]
inline constexpr size_t kResyncChunkFixed = kUuidSize + 8 + 8 + 4 + 4 + 4 + 4;
// RESYNC_DONE: uuid volume, u64 epoch, u64 sequence, u32 chunks_sent
inline constexpr size_t kResyncDoneBody = kUuidSize + 8 + 8 + 4;
// INSPECT: uuid volume, u64 offset, u32 length
inline constexpr size_t kInspectBody = kUuidSize + 8 + 4;
// INSPECT_REPLY: uuid volume, u64 epoch, u64 sequence, u64 offset,
//                u32 length, u32 crc32c(data), data[length]
inline constexpr size_t kInspectReplyFixed = kUuidSize + 8 + 8 + 8 + 4 + 4;
// INVALID: u32 reason, u16 text_len, text[text_len]
inline constexpr size_t kInvalidFixed = 4 + 2;

static_assert(kReplicateFixed <= kMaxFixedBody && kResyncChunkFixed <= kMaxFixedBody);
static_assert(kEpochProposeFixed + kHostIdMax <= kMaxFixedBody);
static_assert(kHelloFixed + kHostIdMax <= kMaxFixedBody);
static_assert(kInvalidFixed + kReasonMax <= kMaxFixedBody + kMaxData);

// ACK status.
enum class AckStatus : uint32_t {
  kOk = 0,          // applied through acked_sequence
  kStaleEpoch = 1,  // sender's epoch is older than ours (fenced); epoch = ours
  kOutOfRange = 2,  // the range is outside the volume
  kUnknownVolume = 3,
  kNotReplica = 4,  // this host is not in the volume's replica set
  kIoError = 5,
};
inline constexpr uint32_t kLastAckStatus = 5;

// EPOCH_REJECT reason.
enum class RejectReason : uint32_t {
  kStaleEpoch = 1,  // proposed epoch <= promised_epoch
  kUnknownVolume = 2,
  kNotReplica = 3,    // the candidate is not in the replica set
  kPrimaryAlive = 4,  // a takeover, but the voter is or reaches a live primary
};
inline constexpr uint32_t kFirstRejectReason = 1;
inline constexpr uint32_t kLastRejectReason = 4;

// INVALID reason.
enum class InvalidReason : uint32_t {
  kMalformed = 1,    // did not decode
  kBadVersion = 2,   // version byte not kVersion
  kNoSession = 3,    // a message before HELLO, or from an expired session
  kUnknownPeer = 4,  // HELLO from a host id not in the cluster file
  kOversize = 5,
  kBadChecksum = 6,
};
inline constexpr uint32_t kFirstInvalidReason = 1;
inline constexpr uint32_t kLastInvalidReason = 6;

}  // namespace vnvram::replication::wire
