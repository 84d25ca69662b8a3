#include "backend/replication/message.h"

#include <cstring>
#include <string>
#include <type_traits>

#include "backend/replication/host_id.h"
#include "common/crc32c.h"
#include "common/endian.h"

namespace vnvram::replication {

namespace {

using wire::MessageType;

constexpr std::string_view kTypeNames[] = {
    "UNKNOWN",      "HELLO",        "HELLO_ACK",      "REPLICATE",
    "ACK",          "GAP",          "HEARTBEAT",      "EPOCH_PROPOSE",
    "EPOCH_ACCEPT", "EPOCH_REJECT", "RESYNC_REQUEST", "RESYNC_CHUNK",
    "RESYNC_DONE",  "INSPECT",      "INSPECT_REPLY",  "INVALID"};
static_assert(std::size(kTypeNames) == wire::kLastType + 1);

std::string Name(MessageType t) {
  return std::string(TypeName(static_cast<uint8_t>(t)));
}

Status Malformed(MessageType t, std::string_view why) {
  return Status::InvalidArgument("replication " + Name(t) + ": " + std::string(why));
}

// The flag bits a type may carry.
uint16_t AllowedFlags(MessageType t) {
  switch (t) {
    case MessageType::kReplicate: return wire::kReplicateFlags;
    case MessageType::kResyncChunk: return wire::kResyncChunkFlags;
    case MessageType::kEpochPropose: return wire::kEpochProposeFlags;
    default: return 0;
  }
}

// The largest body a type can have under `limits`.
size_t MaxBody(MessageType t, const Limits& limits) {
  switch (t) {
    case MessageType::kHello:
    case MessageType::kHelloAck: return wire::kHelloFixed + wire::kHostIdMax;
    case MessageType::kReplicate: return wire::kReplicateFixed + limits.max_data;
    case MessageType::kAck: return wire::kAckBody;
    case MessageType::kGap: return wire::kGapBody;
    case MessageType::kHeartbeat: return wire::kHeartbeatBody;
    case MessageType::kEpochPropose: return wire::kEpochProposeFixed + wire::kHostIdMax;
    case MessageType::kEpochAccept: return wire::kEpochAcceptBody;
    case MessageType::kEpochReject: return wire::kEpochRejectBody;
    case MessageType::kResyncRequest: return wire::kResyncRequestBody;
    case MessageType::kResyncChunk: return wire::kResyncChunkFixed + limits.max_data;
    case MessageType::kResyncDone: return wire::kResyncDoneBody;
    case MessageType::kInspect: return wire::kInspectBody;
    case MessageType::kInspectReply: return wire::kInspectReplyFixed + limits.max_data;
    case MessageType::kInvalid: return wire::kInvalidFixed + wire::kReasonMax;
  }
  return 0;
}

bool IsPrintable(std::string_view s) {
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c >= 0x7F) return false;
  }
  return true;
}

bool IsPowerOfTwo(uint32_t v) {
  return v != 0 && (v & (v - 1)) == 0;
}

bool RangeWraps(uint64_t offset, uint64_t length) {
  return length > UINT64_MAX - offset;
}

// ---------------------------------------------------------------------------
// Semantic rules shared by Encode and Decode. Each returns OK or a
// kInvalidArgument / kResourceExhausted naming the field.

Status CheckHostId(MessageType t, std::string_view field, std::string_view id) {
  if (!IsValidHostId(id)) {
    return Malformed(t,
                     std::string(field) + " is not 1..64 of [A-Za-z0-9._-] starting alphanumeric");
  }
  return {};
}

Status CheckData(MessageType t, size_t size, const Limits& limits, bool allow_empty) {
  if (size > limits.max_data) {
    return Status::ResourceExhausted("replication " + Name(t) + ": data length " +
                                     std::to_string(size) + " exceeds the maximum " +
                                     std::to_string(limits.max_data));
  }
  if (size == 0 && !allow_empty) return Malformed(t, "empty data");
  return {};
}

Status CheckMaxData(MessageType t, uint32_t max_data) {
  if (max_data < wire::kMinResyncChunk || max_data > wire::kMaxData) {
    return Malformed(t, "max_data " + std::to_string(max_data) + " outside " +
                            std::to_string(wire::kMinResyncChunk) + ".." +
                            std::to_string(wire::kMaxData));
  }
  return {};
}

Status Check(const Hello& m, const Limits&) {
  VNVRAM_RETURN_IF_ERROR(CheckHostId(MessageType::kHello, "host_id", m.host_id));
  return CheckMaxData(MessageType::kHello, m.max_data);
}
Status Check(const HelloAck& m, const Limits&) {
  VNVRAM_RETURN_IF_ERROR(CheckHostId(MessageType::kHelloAck, "host_id", m.host_id));
  return CheckMaxData(MessageType::kHelloAck, m.max_data);
}
Status Check(const Replicate& m, const Limits& limits) {
  constexpr auto t = MessageType::kReplicate;
  if (m.epoch == 0) return Malformed(t, "epoch 0");
  if (m.sequence == 0) return Malformed(t, "sequence 0");
  VNVRAM_RETURN_IF_ERROR(CheckData(t, m.data.size(), limits, false));
  if (RangeWraps(m.offset, m.data.size())) {
    return Malformed(t, "offset " + std::to_string(m.offset) + " + length " +
                            std::to_string(m.data.size()) + " wraps");
  }
  return {};
}
Status Check(const Ack& m, const Limits&) {
  if (static_cast<uint32_t>(m.status) > wire::kLastAckStatus) {
    return Malformed(MessageType::kAck,
                     "unknown status " + std::to_string(static_cast<uint32_t>(m.status)));
  }
  return {};
}
Status Check(const Gap& m, const Limits&) {
  if (m.received_sequence <= m.expected_sequence) {
    return Malformed(MessageType::kGap, "received_sequence " + std::to_string(m.received_sequence) +
                                            " is not above expected_sequence " +
                                            std::to_string(m.expected_sequence));
  }
  return {};
}
Status Check(const Heartbeat&, const Limits&) {
  return {};
}
Status Check(const EpochPropose& m, const Limits&) {
  constexpr auto t = MessageType::kEpochPropose;
  if (m.proposed_epoch == 0) return Malformed(t, "proposed_epoch 0");
  if (m.last_epoch >= m.proposed_epoch) {
    return Malformed(t, "last_epoch " + std::to_string(m.last_epoch) +
                            " is not below proposed_epoch " + std::to_string(m.proposed_epoch));
  }
  return CheckHostId(t, "candidate", m.candidate);
}
Status Check(const EpochAccept& m, const Limits&) {
  if (m.epoch == 0) return Malformed(MessageType::kEpochAccept, "epoch 0");
  return {};
}
Status Check(const EpochReject& m, const Limits&) {
  const auto r = static_cast<uint32_t>(m.reason);
  if (r < wire::kFirstRejectReason || r > wire::kLastRejectReason) {
    return Malformed(MessageType::kEpochReject, "unknown reason " + std::to_string(r));
  }
  return {};
}
Status CheckChunkSize(MessageType t, uint32_t chunk_size, const Limits& limits) {
  if (!IsPowerOfTwo(chunk_size) || chunk_size < wire::kMinResyncChunk ||
      chunk_size > limits.max_data) {
    return Malformed(t, "chunk_size " + std::to_string(chunk_size) + " is not a power of two in " +
                            std::to_string(wire::kMinResyncChunk) + ".." +
                            std::to_string(limits.max_data));
  }
  return {};
}
Status Check(const ResyncRequest& m, const Limits& limits) {
  if (m.epoch == 0) return Malformed(MessageType::kResyncRequest, "epoch 0");
  return CheckChunkSize(MessageType::kResyncRequest, m.chunk_size, limits);
}
Status Check(const ResyncChunk& m, const Limits& limits) {
  constexpr auto t = MessageType::kResyncChunk;
  if (m.epoch == 0) return Malformed(t, "epoch 0");
  VNVRAM_RETURN_IF_ERROR(CheckChunkSize(t, m.chunk_size, limits));
  VNVRAM_RETURN_IF_ERROR(CheckData(t, m.data.size(), limits, false));
  if (m.data.size() > m.chunk_size) {
    return Malformed(t, "data length " + std::to_string(m.data.size()) + " exceeds chunk_size " +
                            std::to_string(m.chunk_size));
  }
  return {};
}
Status Check(const ResyncDone& m, const Limits&) {
  if (m.epoch == 0) return Malformed(MessageType::kResyncDone, "epoch 0");
  return {};
}
Status Check(const Inspect& m, const Limits& limits) {
  constexpr auto t = MessageType::kInspect;
  VNVRAM_RETURN_IF_ERROR(CheckData(t, m.length, limits, false));
  if (RangeWraps(m.offset, m.length)) return Malformed(t, "offset + length wraps");
  return {};
}
Status Check(const InspectReply& m, const Limits& limits) {
  constexpr auto t = MessageType::kInspectReply;
  VNVRAM_RETURN_IF_ERROR(CheckData(t, m.data.size(), limits, true));
  if (RangeWraps(m.offset, m.data.size())) return Malformed(t, "offset + length wraps");
  return {};
}
Status Check(const Invalid& m, const Limits&) {
  constexpr auto t = MessageType::kInvalid;
  const auto r = static_cast<uint32_t>(m.reason);
  if (r < wire::kFirstInvalidReason || r > wire::kLastInvalidReason) {
    return Malformed(t, "unknown reason " + std::to_string(r));
  }
  if (m.text.size() > wire::kReasonMax || !IsPrintable(m.text)) {
    return Malformed(t, "text is not 0..256 printable characters");
  }
  return {};
}

// ---------------------------------------------------------------------------
// Encoding. Sizes are computed first; the writer then cannot overflow.

class Writer {
 public:
  explicit Writer(Bytes* out) : out_(out) {}
  template <typename T>
  void LE(T v) {
    const size_t at = out_->size();
    out_->resize(at + sizeof(T));
    StoreLE<T>(out_->data() + at, v);
  }
  void Raw(const void* p, size_t n) {
    const auto* b = static_cast<const std::byte*>(p);
    out_->insert(out_->end(), b, b + n);
  }
  void Uuid(const vnvram::Uuid& u) { Raw(u.bytes.data(), u.bytes.size()); }
  void HostId(const std::string& s) {
    LE<uint8_t>(static_cast<uint8_t>(s.size()));
    Raw(s.data(), s.size());
  }
  void Data(std::span<const std::byte> d) { Raw(d.data(), d.size()); }

 private:
  Bytes* out_;
};

uint32_t Crc(std::span<const std::byte> d) {
  return Crc32c(d);
}

void Body(Writer& w, const Hello& m) {
  w.HostId(m.host_id);
  w.LE<uint64_t>(m.incarnation);
  w.LE<uint32_t>(m.max_data);
}
void Body(Writer& w, const HelloAck& m) {
  w.HostId(m.host_id);
  w.LE<uint64_t>(m.incarnation);
  w.LE<uint32_t>(m.max_data);
}
void Body(Writer& w, const Replicate& m) {
  w.Uuid(m.volume);
  w.LE<uint64_t>(m.epoch);
  w.LE<uint64_t>(m.sequence);
  w.LE<uint64_t>(m.offset);
  w.LE<uint32_t>(static_cast<uint32_t>(m.data.size()));
  w.LE<uint32_t>(Crc(m.data));
  w.Data(m.data);
}
void Body(Writer& w, const Ack& m) {
  w.Uuid(m.volume);
  w.LE<uint64_t>(m.epoch);
  w.LE<uint64_t>(m.acked_sequence);
  w.LE<uint32_t>(static_cast<uint32_t>(m.status));
}
void Body(Writer& w, const Gap& m) {
  w.Uuid(m.volume);
  w.LE<uint64_t>(m.epoch);
  w.LE<uint64_t>(m.expected_sequence);
  w.LE<uint64_t>(m.received_sequence);
}
void Body(Writer& w, const Heartbeat& m) {
  w.LE<uint64_t>(m.incarnation);
  w.LE<uint64_t>(m.counter);
}
void Body(Writer& w, const EpochPropose& m) {
  w.Uuid(m.volume);
  w.LE<uint64_t>(m.proposed_epoch);
  w.LE<uint64_t>(m.last_epoch);
  w.LE<uint64_t>(m.last_sequence);
  w.HostId(m.candidate);
}
void Body(Writer& w, const EpochAccept& m) {
  w.Uuid(m.volume);
  w.LE<uint64_t>(m.epoch);
  w.LE<uint64_t>(m.last_epoch);
  w.LE<uint64_t>(m.last_sequence);
}
void Body(Writer& w, const EpochReject& m) {
  w.Uuid(m.volume);
  w.LE<uint64_t>(m.proposed_epoch);
  w.LE<uint64_t>(m.promised_epoch);
  w.LE<uint64_t>(m.last_epoch);
  w.LE<uint64_t>(m.last_sequence);
  w.LE<uint32_t>(static_cast<uint32_t>(m.reason));
}
void Body(Writer& w, const ResyncRequest& m) {
  w.Uuid(m.volume);
  w.LE<uint64_t>(m.epoch);
  w.LE<uint64_t>(m.since_sequence);
  w.LE<uint32_t>(m.chunk_size);
}
void Body(Writer& w, const ResyncChunk& m) {
  w.Uuid(m.volume);
  w.LE<uint64_t>(m.epoch);
  w.LE<uint64_t>(m.as_of_sequence);
  w.LE<uint32_t>(m.chunk_size);
  w.LE<uint32_t>(m.chunk_index);
  w.LE<uint32_t>(static_cast<uint32_t>(m.data.size()));
  w.LE<uint32_t>(Crc(m.data));
  w.Data(m.data);
}
void Body(Writer& w, const ResyncDone& m) {
  w.Uuid(m.volume);
  w.LE<uint64_t>(m.epoch);
  w.LE<uint64_t>(m.sequence);
  w.LE<uint32_t>(m.chunks_sent);
}
void Body(Writer& w, const Inspect& m) {
  w.Uuid(m.volume);
  w.LE<uint64_t>(m.offset);
  w.LE<uint32_t>(m.length);
}
void Body(Writer& w, const InspectReply& m) {
  w.Uuid(m.volume);
  w.LE<uint64_t>(m.epoch);
  w.LE<uint64_t>(m.sequence);
  w.LE<uint64_t>(m.offset);
  w.LE<uint32_t>(static_cast<uint32_t>(m.data.size()));
  w.LE<uint32_t>(Crc(m.data));
  w.Data(m.data);
}
void Body(Writer& w, const Invalid& m) {
  w.LE<uint32_t>(static_cast<uint32_t>(m.reason));
  w.LE<uint16_t>(static_cast<uint16_t>(m.text.size()));
  w.Raw(m.text.data(), m.text.size());
}

uint16_t FlagsOf(const Message& m) {
  if (const auto* r = std::get_if<Replicate>(&m))
    return r->ack_requested ? wire::kFlagAckRequested : 0;
  if (const auto* c = std::get_if<ResyncChunk>(&m)) {
    return static_cast<uint16_t>((c->last ? wire::kFlagLastChunk : 0) |
                                 (c->first ? wire::kFlagFirstChunk : 0));
  }
  if (const auto* e = std::get_if<EpochPropose>(&m)) return e->takeover ? wire::kFlagTakeover : 0;
  return 0;
}

// ---------------------------------------------------------------------------
// Decoding of a body whose length the header already bounded.

class Reader {
 public:
  Reader(MessageType t, std::span<const std::byte> body) : t_(t), r_(body) {}
  template <typename T>
  T LE() {
    T v{};
    r_.GetLE(&v);
    return v;
  }
  vnvram::Uuid Uuid() {
    vnvram::Uuid u;
    std::span<const std::byte> b;
    if (r_.GetBytes(u.bytes.size(), &b)) std::memcpy(u.bytes.data(), b.data(), b.size());
    return u;
  }
  std::string HostId() {
    const uint8_t n = LE<uint8_t>();
    std::span<const std::byte> b;
    if (n > wire::kHostIdMax || !r_.GetBytes(n, &b))
      return Fail("host id length " + std::to_string(n));
    return std::string(reinterpret_cast<const char*>(b.data()), b.size());
  }
  std::string Text() {
    const uint16_t n = LE<uint16_t>();
    std::span<const std::byte> b;
    if (n > wire::kReasonMax || !r_.GetBytes(n, &b))
      return Fail("text length " + std::to_string(n));
    return std::string(reinterpret_cast<const char*>(b.data()), b.size());
  }
  // Reads `n` data bytes (already read as a length field): the length is
  // bounded against the limit and what is left before anything is copied.
  Bytes Data(uint32_t n, const Limits& limits) {
    if (!status_.ok()) return {};
    if (n > limits.max_data) {
      status_ = Status::ResourceExhausted("replication " + Name(t_) + ": data length " +
                                          std::to_string(n) + " exceeds the maximum " +
                                          std::to_string(limits.max_data));
      return {};
    }
    std::span<const std::byte> b;
    if (!r_.GetBytes(n, &b)) {
      Fail("data length " + std::to_string(n) + " runs past the body");
      return {};
    }
    return Bytes(b.begin(), b.end());
  }
  // Checks the CRC field read earlier against the data read (the last field
  // of its body); a structural error found by Finish() is reported first.
  void CheckCrc(uint32_t crc, const Bytes& data) {
    if (!status_.ok() || r_.failed() || r_.remaining() != 0) return;
    const uint32_t actual = Crc32c(data);
    if (actual != crc) {
      status_ = Status::Corruption("replication " + Name(t_) + ": data crc32c " + Hex(actual) +
                                   " does not match the frame's " + Hex(crc));
    }
  }
  // OK when every read succeeded and nothing is left over.
  Status Finish() {
    if (!status_.ok()) return status_;
    if (r_.failed()) return Malformed(t_, "body too short");
    if (r_.remaining() != 0) {
      return Malformed(t_, std::to_string(r_.remaining()) + " trailing bytes");
    }
    return {};
  }

 private:
  static std::string Hex(uint32_t v) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string s = "0x";
    for (int i = 28; i >= 0; i -= 4) s += kHex[(v >> i) & 15];
    return s;
  }
  std::string Fail(const std::string& why) {
    if (status_.ok()) status_ = Malformed(t_, why + " runs past the body or the maximum");
    return {};
  }
  MessageType t_;
  ByteReader r_;
  Status status_;
};

Message ParseBody(MessageType t, uint16_t flags, Reader& r, const Limits& limits) {
  switch (t) {
    case MessageType::kHello: {
      Hello m;
      m.host_id = r.HostId();
      m.incarnation = r.LE<uint64_t>();
      m.max_data = r.LE<uint32_t>();
      return m;
    }
    case MessageType::kHelloAck: {
      HelloAck m;
      m.host_id = r.HostId();
      m.incarnation = r.LE<uint64_t>();
      m.max_data = r.LE<uint32_t>();
      return m;
    }
    case MessageType::kReplicate: {
      Replicate m;
      m.volume = r.Uuid();
      m.epoch = r.LE<uint64_t>();
      m.sequence = r.LE<uint64_t>();
      m.offset = r.LE<uint64_t>();
      const uint32_t length = r.LE<uint32_t>();
      const uint32_t crc = r.LE<uint32_t>();
      m.ack_requested = (flags & wire::kFlagAckRequested) != 0;
      m.data = r.Data(length, limits);
      r.CheckCrc(crc, m.data);
      return m;
    }
    case MessageType::kAck: {
      Ack m;
      m.volume = r.Uuid();
      m.epoch = r.LE<uint64_t>();
      m.acked_sequence = r.LE<uint64_t>();
      m.status = static_cast<wire::AckStatus>(r.LE<uint32_t>());
      return m;
    }
    case MessageType::kGap: {
      Gap m;
      m.volume = r.Uuid();
      m.epoch = r.LE<uint64_t>();
      m.expected_sequence = r.LE<uint64_t>();
      m.received_sequence = r.LE<uint64_t>();
      return m;
    }
    case MessageType::kHeartbeat: {
      Heartbeat m;
      m.incarnation = r.LE<uint64_t>();
      m.counter = r.LE<uint64_t>();
      return m;
    }
    case MessageType::kEpochPropose: {
      EpochPropose m;
      m.volume = r.Uuid();
      m.proposed_epoch = r.LE<uint64_t>();
      m.last_epoch = r.LE<uint64_t>();
      m.last_sequence = r.LE<uint64_t>();
      m.candidate = r.HostId();
      m.takeover = (flags & wire::kFlagTakeover) != 0;
      return m;
    }
    case MessageType::kEpochAccept: {
      EpochAccept m;
      m.volume = r.Uuid();
      m.epoch = r.LE<uint64_t>();
      m.last_epoch = r.LE<uint64_t>();
      m.last_sequence = r.LE<uint64_t>();
      return m;
    }
    case MessageType::kEpochReject: {
      EpochReject m;
      m.volume = r.Uuid();
      m.proposed_epoch = r.LE<uint64_t>();
      m.promised_epoch = r.LE<uint64_t>();
      m.last_epoch = r.LE<uint64_t>();
      m.last_sequence = r.LE<uint64_t>();
      m.reason = static_cast<wire::RejectReason>(r.LE<uint32_t>());
      return m;
    }
    case MessageType::kResyncRequest: {
      ResyncRequest m;
      m.volume = r.Uuid();
      m.epoch = r.LE<uint64_t>();
      m.since_sequence = r.LE<uint64_t>();
      m.chunk_size = r.LE<uint32_t>();
      return m;
    }
    case MessageType::kResyncChunk: {
      ResyncChunk m;
      m.volume = r.Uuid();
      m.epoch = r.LE<uint64_t>();
      m.as_of_sequence = r.LE<uint64_t>();
      m.chunk_size = r.LE<uint32_t>();
      m.chunk_index = r.LE<uint32_t>();
      const uint32_t length = r.LE<uint32_t>();
      const uint32_t crc = r.LE<uint32_t>();
      m.last = (flags & wire::kFlagLastChunk) != 0;
      m.first = (flags & wire::kFlagFirstChunk) != 0;
      m.data = r.Data(length, limits);
      r.CheckCrc(crc, m.data);
      return m;
    }
    case MessageType::kResyncDone: {
      ResyncDone m;
      m.volume = r.Uuid();
      m.epoch = r.LE<uint64_t>();
      m.sequence = r.LE<uint64_t>();
      m.chunks_sent = r.LE<uint32_t>();
      return m;
    }
    case MessageType::kInspect: {
      Inspect m;
      m.volume = r.Uuid();
      m.offset = r.LE<uint64_t>();
      m.length = r.LE<uint32_t>();
      return m;
    }
    case MessageType::kInspectReply: {
      InspectReply m;
      m.volume = r.Uuid();
      m.epoch = r.LE<uint64_t>();
      m.sequence = r.LE<uint64_t>();
      m.offset = r.LE<uint64_t>();
      const uint32_t length = r.LE<uint32_t>();
      const uint32_t crc = r.LE<uint32_t>();
      m.data = r.Data(length, limits);
      r.CheckCrc(crc, m.data);
      return m;
    }
    case MessageType::kInvalid: {
      Invalid m;
      m.reason = static_cast<wire::InvalidReason>(r.LE<uint32_t>());
      m.text = r.Text();
      return m;
    }
  }
  return Invalid{};  // unreachable: DecodeHeader admitted only known types
}

Status CheckLimits(const Limits& limits) {
  if (limits.max_data < wire::kMinResyncChunk || limits.max_data > wire::kMaxData) {
    return Status::InvalidArgument(
        "replication limits: max_data " + std::to_string(limits.max_data) + " outside " +
        std::to_string(wire::kMinResyncChunk) + ".." + std::to_string(wire::kMaxData));
  }
  return {};
}

}  // namespace

wire::MessageType TypeOf(const Message& m) {
  // The variant's alternatives are in wire type order, from 1.
  return static_cast<MessageType>(m.index() + 1);
}
static_assert(std::is_same_v<std::variant_alternative_t<2, Message>, Replicate>);
static_assert(std::is_same_v<std::variant_alternative_t<14, Message>, Invalid>);
static_assert(std::variant_size_v<Message> == wire::kLastType);

std::string_view TypeName(uint8_t type) {
  if (type < wire::kFirstType || type > wire::kLastType) return kTypeNames[0];
  return kTypeNames[type];
}

Result<Header> DecodeHeader(std::span<const std::byte> frame, const Limits& limits) {
  VNVRAM_RETURN_IF_ERROR(CheckLimits(limits));
  if (frame.size() < wire::kHeaderSize) {
    return Status::InvalidArgument("replication frame: " + std::to_string(frame.size()) +
                                   " bytes, shorter than the 16-byte header");
  }
  if (std::memcmp(frame.data() + wire::kSignatureOffset, wire::kSignature, 4) != 0) {
    return Status::InvalidArgument("replication frame: bad signature");
  }
  const auto version = static_cast<uint8_t>(frame[wire::kVersionOffset]);
  if (version != wire::kVersion) {
    return Status::NotSupported("replication frame: version " + std::to_string(version) +
                                ", this host speaks " + std::to_string(wire::kVersion));
  }
  const auto type = static_cast<uint8_t>(frame[wire::kTypeOffset]);
  if (type < wire::kFirstType || type > wire::kLastType) {
    return Status::InvalidArgument("replication frame: unknown type " + std::to_string(type));
  }
  Header h;
  h.type = static_cast<MessageType>(type);
  h.flags = LoadLE<uint16_t>(frame.data() + wire::kFlagsOffset);
  h.body_length = LoadLE<uint32_t>(frame.data() + wire::kBodyLengthOffset);
  if ((h.flags & ~AllowedFlags(h.type)) != 0) {
    return Malformed(h.type, "undefined flags " + std::to_string(h.flags));
  }
  if (LoadLE<uint32_t>(frame.data() + wire::kReservedOffset) != 0) {
    return Malformed(h.type, "reserved header field is not zero");
  }
  const size_t max_body = MaxBody(h.type, limits);
  if (h.body_length > max_body) {
    return Status::ResourceExhausted("replication " + Name(h.type) + ": body length " +
                                     std::to_string(h.body_length) + " exceeds the maximum " +
                                     std::to_string(max_body));
  }
  return h;
}

Result<Message> Decode(std::span<const std::byte> frame, const Limits& limits) {
  VNVRAM_ASSIGN_OR_RETURN(const Header h, DecodeHeader(frame, limits));
  const size_t body_size = frame.size() - wire::kHeaderSize;
  if (body_size != h.body_length) {
    return Malformed(h.type, "header body length " + std::to_string(h.body_length) +
                                 " but the frame carries " + std::to_string(body_size));
  }
  Reader r(h.type, frame.subspan(wire::kHeaderSize));
  Message m = ParseBody(h.type, h.flags, r, limits);
  VNVRAM_RETURN_IF_ERROR(r.Finish());
  VNVRAM_RETURN_IF_ERROR(std::visit([&](const auto& v) { return Check(v, limits); }, m));
  return m;
}

Result<Bytes> Encode(const Message& m, const Limits& limits) {
  VNVRAM_RETURN_IF_ERROR(CheckLimits(limits));
  VNVRAM_RETURN_IF_ERROR(std::visit([&](const auto& v) { return Check(v, limits); }, m));
  Bytes out;
  const size_t data_size = std::visit(
      [](const auto& v) -> size_t {
        if constexpr (requires { v.data.size(); }) {
          return v.data.size();
        } else {
          return 0;
        }
      },
      m);
  out.reserve(wire::kHeaderSize + wire::kMaxFixedBody + wire::kReasonMax + data_size);
  Writer w(&out);
  w.Raw(wire::kSignature, 4);
  w.LE<uint8_t>(wire::kVersion);
  w.LE<uint8_t>(static_cast<uint8_t>(TypeOf(m)));
  w.LE<uint16_t>(FlagsOf(m));
  w.LE<uint32_t>(0);  // body length, patched below
  w.LE<uint32_t>(0);  // reserved
  std::visit([&](const auto& v) { Body(w, v); }, m);
  const size_t body = out.size() - wire::kHeaderSize;
  if (body > MaxBody(TypeOf(m), limits)) {
    return Status::Internal("replication " + Name(TypeOf(m)) + ": encoded body too large");
  }
  StoreLE<uint32_t>(out.data() + wire::kBodyLengthOffset, static_cast<uint32_t>(body));
  return out;
}

Result<Bytes> EncodeReplicate(const Uuid& volume, uint64_t epoch, uint64_t sequence,
                              uint64_t offset, bool ack_requested, std::span<const std::byte> data,
                              const Limits& limits) {
  constexpr auto t = MessageType::kReplicate;
  VNVRAM_RETURN_IF_ERROR(CheckLimits(limits));
  // Check(const Replicate&)'s rules, on the borrowed data.
  if (epoch == 0) return Malformed(t, "epoch 0");
  if (sequence == 0) return Malformed(t, "sequence 0");
  VNVRAM_RETURN_IF_ERROR(CheckData(t, data.size(), limits, false));
  if (RangeWraps(offset, data.size())) {
    return Malformed(t, "offset " + std::to_string(offset) + " + length " +
                            std::to_string(data.size()) + " wraps");
  }
  Bytes out;
  out.reserve(wire::kHeaderSize + wire::kReplicateFixed + data.size());
  Writer w(&out);
  w.Raw(wire::kSignature, 4);
  w.LE<uint8_t>(wire::kVersion);
  w.LE<uint8_t>(static_cast<uint8_t>(t));
  w.LE<uint16_t>(ack_requested ? wire::kFlagAckRequested : 0);
  w.LE<uint32_t>(static_cast<uint32_t>(wire::kReplicateFixed + data.size()));
  w.LE<uint32_t>(0);  // reserved
  // Body(Writer&, const Replicate&)'s layout.
  w.Uuid(volume);
  w.LE<uint64_t>(epoch);
  w.LE<uint64_t>(sequence);
  w.LE<uint64_t>(offset);
  w.LE<uint32_t>(static_cast<uint32_t>(data.size()));
  w.LE<uint32_t>(Crc(data));
  w.Data(data);
  return out;
}

}  // namespace vnvram::replication
