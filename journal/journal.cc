#include "journal/journal.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <vector>

#include "common/crc32c.h"
#include "common/endian.h"

namespace vnvram::journal {
namespace {

constexpr std::array<char, 8> kSuperMagic = {'V', 'N', 'V', 'J', 'R', 'N', 'L', '\0'};
constexpr uint32_t kVersion = 1;
constexpr uint64_t kSlotSize = 2048;
constexpr uint64_t kSuperBytes = 88;  // fields, then the CRC at 88
constexpr uint32_t kRecordMagic = 0x4352524Au;
constexpr uint8_t kTypeData = 1;
constexpr uint8_t kTypePad = 2;
constexpr uint8_t kFlagCommit = 1;

uint64_t RecordSize(uint64_t payload) {
  return (kHeaderSize + payload + 7) & ~uint64_t{7};
}

struct Super {
  std::array<std::byte, 16> uuid{};
  uint64_t region_size = 0;
  uint64_t log_size = 0;
  uint64_t generation = 0;
  uint64_t head = 0;
  uint64_t head_seq = 1;
  uint32_t incarnation = 0;
};

void EncodeSuper(const Super& s, std::byte* out) {
  std::memset(out, 0, kSlotSize);
  std::memcpy(out, kSuperMagic.data(), 8);
  StoreLE<uint32_t>(out + 8, kVersion);
  StoreLE<uint32_t>(out + 12, 0);  // flags
  std::memcpy(out + 16, s.uuid.data(), 16);
  StoreLE<uint64_t>(out + 32, s.region_size);
  StoreLE<uint64_t>(out + 40, kLogOffset);
  StoreLE<uint64_t>(out + 48, s.log_size);
  StoreLE<uint64_t>(out + 56, s.generation);
  StoreLE<uint64_t>(out + 64, s.head);
  StoreLE<uint64_t>(out + 72, s.head_seq);
  StoreLE<uint32_t>(out + 80, s.incarnation);
  StoreLE<uint32_t>(out + 84, 0);
  StoreLE<uint32_t>(out + kSuperBytes, Crc32c({out, kSuperBytes}));
}

// The slot's fields when its magic, version and CRC are right.
std::optional<Super> DecodeSuper(const std::byte* in) {
  if (std::memcmp(in, kSuperMagic.data(), 8) != 0) return std::nullopt;
  if (LoadLE<uint32_t>(in + 8) != kVersion) return std::nullopt;
  if (LoadLE<uint32_t>(in + kSuperBytes) != Crc32c({in, kSuperBytes})) return std::nullopt;
  if (LoadLE<uint64_t>(in + 40) != kLogOffset) return std::nullopt;
  Super s;
  std::memcpy(s.uuid.data(), in + 16, 16);
  s.region_size = LoadLE<uint64_t>(in + 32);
  s.log_size = LoadLE<uint64_t>(in + 48);
  s.generation = LoadLE<uint64_t>(in + 56);
  s.head = LoadLE<uint64_t>(in + 64);
  s.head_seq = LoadLE<uint64_t>(in + 72);
  s.incarnation = LoadLE<uint32_t>(in + 80);
  return s;
}

struct Header {
  uint8_t type = 0;
  uint8_t flags = 0;
  uint32_t length = 0;
  uint32_t crc = 0;
  uint32_t incarnation = 0;
  uint64_t sequence = 0;
  uint64_t timestamp_ns = 0;
};

// The record CRC: the payload's CRC extended with the header whose CRC
// field is zero (Commit() can then flag a record without reading it again).
uint32_t HeaderCrc(uint32_t payload_crc, const std::byte* header) {
  std::array<std::byte, kHeaderSize> h;
  std::memcpy(h.data(), header, kHeaderSize);
  StoreLE<uint32_t>(h.data() + 12, 0);
  return Crc32cExtend(payload_crc, h);
}

void EncodeHeader(const Header& h, uint32_t payload_crc, std::byte* out) {
  StoreLE<uint32_t>(out, kRecordMagic);
  out[4] = std::byte{h.type};
  out[5] = std::byte{h.flags};
  StoreLE<uint16_t>(out + 6, 0);
  StoreLE<uint32_t>(out + 8, h.length);
  StoreLE<uint32_t>(out + 12, 0);
  StoreLE<uint32_t>(out + 16, h.incarnation);
  StoreLE<uint32_t>(out + 20, 0);
  StoreLE<uint64_t>(out + 24, h.sequence);
  StoreLE<uint64_t>(out + 32, h.timestamp_ns);
  StoreLE<uint32_t>(out + 12, HeaderCrc(payload_crc, out));
}

Header DecodeHeader(const std::byte* in) {
  Header h;
  h.type = static_cast<uint8_t>(in[4]);
  h.flags = static_cast<uint8_t>(in[5]);
  h.length = LoadLE<uint32_t>(in + 8);
  h.crc = LoadLE<uint32_t>(in + 12);
  h.incarnation = LoadLE<uint32_t>(in + 16);
  h.sequence = LoadLE<uint64_t>(in + 24);
  h.timestamp_ns = LoadLE<uint64_t>(in + 32);
  return h;
}

}  // namespace

Status Journal::Format(std::span<std::byte> region, const PersistFn& persist,
                       const std::array<std::byte, 16>& uuid) {
  if (region.size() < 2 * kLogOffset || region.size() % 8 != 0) {
    return Status::InvalidArgument("journal: a region of " + std::to_string(region.size()) +
                                   " bytes; need a multiple of 8, at least 8192");
  }
  Super s;
  s.uuid = uuid;
  s.region_size = region.size();
  s.log_size = region.size() - kLogOffset;
  // Generation g lives in slot g % 2; both slots start valid.
  s.generation = 0;
  EncodeSuper(s, region.data());
  s.generation = 1;
  EncodeSuper(s, region.data() + kSlotSize);
  // No record may continue the log at its start.
  std::memset(region.data() + kLogOffset, 0, kHeaderSize);
  return persist(0, kLogOffset + kHeaderSize);
}

Result<std::unique_ptr<Journal>> Journal::Open(std::span<std::byte> region, PersistFn persist,
                                               const RecordFn& on_record) {
  if (region.size() < 2 * kLogOffset) return Status::InvalidArgument("journal: region too small");
  std::optional<Super> best;
  for (uint64_t slot = 0; slot < 2; ++slot) {
    std::optional<Super> s = DecodeSuper(region.data() + slot * kSlotSize);
    if (s && (!best || s->generation > best->generation)) best = s;
  }
  if (!best) return Status::Corruption("journal: no valid superblock (not formatted, or torn)");
  if (best->region_size != region.size() || best->log_size != region.size() - kLogOffset ||
      best->head_seq == 0) {
    return Status::Corruption("journal: the superblock describes a region of " +
                              std::to_string(best->region_size) + " bytes, this one has " +
                              std::to_string(region.size()));
  }
  std::unique_ptr<Journal> j(new Journal(region, std::move(persist)));
  j->uuid_ = best->uuid;
  j->log_size_ = best->log_size;
  j->generation_ = best->generation;
  j->head_ = best->head;
  j->head_seq_ = best->head_seq;
  j->incarnation_ = best->incarnation;
  VNVRAM_RETURN_IF_ERROR(j->Replay(on_record));
  // A new incarnation before any append: a record written from now on can
  // never be chained after a stale one of an earlier life (or the reverse).
  ++j->incarnation_;
  VNVRAM_RETURN_IF_ERROR(j->WriteSuperblock());
  return j;
}

Status Journal::Replay(const RecordFn& on_record) {
  uint64_t at = head_;
  uint64_t expect = head_seq_;
  uint32_t last_incarnation = 0;
  std::vector<std::pair<uint64_t, uint64_t>> batch;  // (sequence, offset) not yet committed
  committed_ = head_;
  next_seq_ = head_seq_;
  index_.clear();
  while (at - head_ < log_size_) {
    const uint64_t pos = at % log_size_;
    const uint64_t room = log_size_ - pos;
    if (room < kHeaderSize) {  // too little for a header: the log wraps
      at += room;
      continue;
    }
    const std::byte* p = region_.data() + kLogOffset + pos;
    if (LoadLE<uint32_t>(p) != kRecordMagic) break;
    const Header h = DecodeHeader(p);
    if (h.sequence != expect || h.incarnation < last_incarnation || h.incarnation > incarnation_) {
      break;
    }
    const uint64_t size = h.type == kTypePad ? room : RecordSize(h.length);
    if ((h.type != kTypeData && h.type != kTypePad) || size > room ||
        (h.type == kTypePad && h.length != room - kHeaderSize) || at + size - head_ > log_size_) {
      break;
    }
    const std::span<const std::byte> payload(p + kHeaderSize, h.type == kTypePad ? 0 : h.length);
    if (h.crc != HeaderCrc(Crc32c(payload), p)) break;
    last_incarnation = h.incarnation;
    at += size;
    if (h.type == kTypePad) continue;
    batch.emplace_back(h.sequence, at - size);
    ++expect;
    if ((h.flags & kFlagCommit) == 0) continue;
    for (const auto& [seq, off] : batch) {
      const std::byte* r = region_.data() + Physical(off);
      const Header rh = DecodeHeader(r);
      if (on_record) on_record(Record{seq, rh.timestamp_ns, {r + kHeaderSize, rh.length}});
      index_.emplace_back(seq, off);
    }
    batch.clear();
    committed_ = at;
    next_seq_ = expect;
  }
  tail_ = committed_;
  pending_ = 0;
  return Status::Ok();
}

Status Journal::WriteSuperblock() {
  Super s;
  s.uuid = uuid_;
  s.region_size = region_.size();
  s.log_size = log_size_;
  s.generation = ++generation_;
  s.head = head_;
  s.head_seq = head_seq_;
  s.incarnation = incarnation_;
  const uint64_t slot = generation_ % 2;  // the older slot: the newest stays valid
  EncodeSuper(s, region_.data() + slot * kSlotSize);
  return persist_(slot * kSlotSize, kSlotSize);
}

Result<uint64_t> Journal::Append(std::span<const std::byte> payload, uint64_t timestamp_ns) {
  const uint64_t size = RecordSize(payload.size());
  if (payload.size() > kMaxPayload || size > log_size_) {
    return Status::InvalidArgument("journal: a record of " + std::to_string(payload.size()) +
                                   " bytes does not fit in the log");
  }
  const uint64_t pos = tail_ % log_size_;
  const uint64_t room = log_size_ - pos;
  const uint64_t skip = size > room ? room : 0;
  if (tail_ + skip + size - head_ > log_size_) {
    return Status(Code::kResourceExhausted, "journal full: " + std::to_string(free_bytes()) +
                                                " bytes free, the record needs " +
                                                std::to_string(skip + size));
  }
  if (skip != 0) {
    if (room >= kHeaderSize) {
      Header pad;
      pad.type = kTypePad;
      pad.length = static_cast<uint32_t>(room - kHeaderSize);
      pad.incarnation = incarnation_;
      pad.sequence = next_seq_;  // the sequence of the record that follows
      pad.timestamp_ns = timestamp_ns;
      EncodeHeader(pad, Crc32c({}), region_.data() + Physical(tail_));
    }
    tail_ += skip;
  }
  std::byte* p = region_.data() + Physical(tail_);
  std::memcpy(p + kHeaderSize, payload.data(), payload.size());
  std::memset(p + kHeaderSize + payload.size(), 0, size - kHeaderSize - payload.size());
  Header h;
  h.type = kTypeData;
  h.length = static_cast<uint32_t>(payload.size());
  h.incarnation = incarnation_;
  h.sequence = next_seq_;
  h.timestamp_ns = timestamp_ns;
  last_payload_crc_ = Crc32c(payload);
  EncodeHeader(h, last_payload_crc_, p);
  last_offset_ = tail_;
  index_.emplace_back(next_seq_, tail_);
  tail_ += size;
  ++pending_;
  return next_seq_++;
}

Status Journal::Commit() {
  if (pending_ == 0) return Status::Ok();
  std::byte* last = region_.data() + Physical(last_offset_);
  last[5] = std::byte{kFlagCommit};
  StoreLE<uint32_t>(last + 12, HeaderCrc(last_payload_crc_, last));
  VNVRAM_RETURN_IF_ERROR(PersistLogical(committed_, tail_));
  committed_ = tail_;
  pending_ = 0;
  return Status::Ok();
}

Status Journal::PersistLogical(uint64_t from, uint64_t to) {
  while (from < to) {
    const uint64_t pos = from % log_size_;
    const uint64_t n = std::min(to - from, log_size_ - pos);
    VNVRAM_RETURN_IF_ERROR(persist_(kLogOffset + pos, n));
    from += n;
  }
  return Status::Ok();
}

Status Journal::Trim(uint64_t sequence) {
  if (sequence < head_seq_) return Status::Ok();
  if (sequence > committed_sequence()) {
    return Status::OutOfRange("journal: trim to " + std::to_string(sequence) +
                              ", committed only to " + std::to_string(committed_sequence()));
  }
  while (!index_.empty() && index_.front().first <= sequence) index_.pop_front();
  head_seq_ = sequence + 1;
  head_ = index_.empty() ? committed_ : index_.front().second;
  return WriteSuperblock();
}

Status Journal::Rebind(std::span<std::byte> region) {
  if (region.size() != region_.size()) {
    return Status::InvalidArgument("journal: rebind to a region of " +
                                   std::to_string(region.size()) + " bytes, the journal has " +
                                   std::to_string(region_.size()));
  }
  region_ = region;
  return Status::Ok();
}

bool Journal::Fits(std::span<const size_t> payload_sizes) const {
  uint64_t tail = tail_;
  for (const size_t payload : payload_sizes) {
    const uint64_t size = RecordSize(payload);
    if (payload > kMaxPayload || size > log_size_) return false;
    const uint64_t room = log_size_ - tail % log_size_;
    const uint64_t skip = size > room ? room : 0;  // as Append() does
    if (tail + skip + size - head_ > log_size_) return false;
    tail += skip + size;
  }
  return true;
}

}  // namespace vnvram::journal
