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
// Heads, sequences and generations only grow, by far less than this in any
// journal's life; a superblock above it is damaged (and arithmetic on
// logical offsets cannot overflow).
constexpr uint64_t kMaxLogical = uint64_t{1} << 62;

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
  uint32_t head_incarnation = 0;  // the lowest the record at the head may carry
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
  StoreLE<uint32_t>(out + 84, s.head_incarnation);
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
  s.head_incarnation = LoadLE<uint32_t>(in + 84);
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
  // A fresh region: no record of an earlier journal here may ever continue
  // this one's log (records do not carry the UUID), nor an old superblock
  // survive a torn format.
  std::memset(region.data(), 0, region.size());
  VNVRAM_RETURN_IF_ERROR(persist(0, region.size()));
  Super s;
  s.uuid = uuid;
  s.region_size = region.size();
  s.log_size = region.size() - kLogOffset;
  // Generation g lives in slot g % 2; both slots start valid.
  s.generation = 0;
  EncodeSuper(s, region.data());
  s.generation = 1;
  EncodeSuper(s, region.data() + kSlotSize);
  return persist(0, kLogOffset);
}

Result<std::unique_ptr<Journal>> Journal::Open(std::span<std::byte> region, PersistFn persist,
                                               const RecordFn& on_record) {
  if (region.size() < 2 * kLogOffset) return Status::InvalidArgument("journal: region too small");
  std::optional<Super> best;
  int valid = 0;
  for (uint64_t slot = 0; slot < 2; ++slot) {
    std::optional<Super> s = DecodeSuper(region.data() + slot * kSlotSize);
    if (!s || s->generation % 2 != slot) continue;  // generation g is only ever in slot g % 2
    ++valid;
    if (!best || s->generation > best->generation) best = s;
  }
  if (!best) return Status::Corruption("journal: no valid superblock (not formatted, or torn)");
  if (best->region_size != region.size()) {
    return Status::Corruption("journal: the superblock describes a region of " +
                              std::to_string(best->region_size) + " bytes, this one has " +
                              std::to_string(region.size()));
  }
  if (best->log_size != region.size() - kLogOffset || region.size() % 8 != 0) {
    return Status::Corruption("journal: the superblock's log of " + std::to_string(best->log_size) +
                              " bytes does not fit a region of " + std::to_string(region.size()));
  }
  if (best->head % 8 != 0 || best->head > kMaxLogical || best->head_seq == 0 ||
      best->head_seq > kMaxLogical || best->generation > kMaxLogical) {
    return Status::Corruption("journal: impossible superblock: head " + std::to_string(best->head) +
                              ", head sequence " + std::to_string(best->head_seq) +
                              ", generation " + std::to_string(best->generation));
  }
  // With one slot invalid, it may have been the newest (damaged after it
  // was written), written by an Open that raised the incarnation by one:
  // records of that life are genuine, and the next life must be above it.
  const uint32_t slack = valid == 2 ? 0 : 1;
  if (best->incarnation >= UINT32_MAX - slack) {
    return Status::Corruption("journal: incarnation " + std::to_string(best->incarnation) +
                              " cannot be raised");
  }
  // The slot read may hold stores a killed process never persisted (a
  // trim's, an open's): made durable before the other slot, the durable
  // newest until now, is overwritten.
  VNVRAM_RETURN_IF_ERROR(persist((best->generation % 2) * kSlotSize, kSuperBytes + 4));
  std::unique_ptr<Journal> j(new Journal(region, std::move(persist)));
  j->uuid_ = best->uuid;
  j->log_size_ = best->log_size;
  j->generation_ = best->generation;
  j->head_ = best->head;
  j->head_seq_ = best->head_seq;
  j->head_inc_ = best->head_incarnation;
  j->stats_.valid_slots = valid;
  VNVRAM_RETURN_IF_ERROR(j->Replay(on_record, best->incarnation + slack));
  // A new incarnation before any append: a record written from now on can
  // never be chained after a stale one of an earlier life (or the reverse).
  j->incarnation_ = best->incarnation + slack + 1;
  j->stats_.incarnation = j->incarnation_;
  VNVRAM_RETURN_IF_ERROR(j->WriteSuperblock(j->head_, j->head_seq_, j->head_inc_));
  return j;
}

// What the bytes at a logical offset are to a reader expecting sequence
// `expect` of an incarnation in [min_inc, max_inc]: the next record, no
// record of this log (no header; a whole record of another sequence or
// life), or a damaged one (a header whose type, length or CRC is wrong).
struct Journal::Seen {
  enum Kind { kRecord, kNoRecord, kDamaged } kind = kNoRecord;
  const char* why = "";  // when not a record
  Header h;
  uint64_t size = 0;  // the bytes it takes (a pad: to the end of the log)
};

Journal::Seen Journal::Examine(uint64_t at, uint64_t expect, uint32_t min_inc,
                               uint32_t max_inc) const {
  Seen s;
  const uint64_t room = log_size_ - at % log_size_;  // >= kHeaderSize
  const std::byte* p = region_.data() + Physical(at);
  if (LoadLE<uint32_t>(p) != kRecordMagic) {
    s.why = "no record header";
    return s;
  }
  s.h = DecodeHeader(p);
  s.kind = Seen::kDamaged;
  s.size = s.h.type == kTypePad ? room : RecordSize(s.h.length);
  if (s.h.type != kTypeData && s.h.type != kTypePad) {
    s.why = "unknown record type";
    return s;
  }
  if (s.size > room || (s.h.type == kTypePad && s.h.length != room - kHeaderSize)) {
    s.why = "record length past the end of the log";
    return s;
  }
  const std::span<const std::byte> payload(p + kHeaderSize, s.h.type == kTypePad ? 0 : s.h.length);
  if (s.h.crc != HeaderCrc(Crc32c(payload), p)) {
    s.why = "CRC mismatch (torn or damaged)";
    return s;
  }
  s.kind = Seen::kNoRecord;
  if (s.h.sequence != expect) {
    s.why = "a record of another sequence (an older lap, or stale)";
    return s;
  }
  if (s.h.incarnation < min_inc || s.h.incarnation > max_inc) {
    s.why = "a record of another life (stale)";
    return s;
  }
  if (at + s.size - head_ > log_size_) {
    s.kind = Seen::kDamaged;
    s.why = "record length past the head";
    return s;
  }
  s.kind = Seen::kRecord;
  return s;
}

Status Journal::Replay(const RecordFn& on_record, uint32_t max_incarnation) {
  uint64_t at = head_;
  uint64_t expect = head_seq_;
  // The head's record was written in the life the superblock names or later:
  // a stale record of an earlier life with the head's sequence (a dropped
  // tail's, after everything was trimmed) is not it.
  uint32_t last_incarnation = head_inc_;
  std::vector<std::pair<uint64_t, uint64_t>> batch;  // (sequence, offset) not yet committed
  uint64_t last_batch = head_;                       // where the last committed batch starts
  committed_ = head_;
  next_seq_ = head_seq_;
  index_.clear();
  Seen stop;
  stop.why = "the log is full";
  while (at - head_ < log_size_) {
    const uint64_t room = log_size_ - at % log_size_;
    if (room < kHeaderSize) {  // too little for a header: the log wraps
      at += room;
      continue;
    }
    const Seen s = Examine(at, expect, last_incarnation, max_incarnation);
    if (s.kind != Seen::kRecord) {
      stop = s;
      break;
    }
    last_incarnation = s.h.incarnation;
    at += s.size;
    if (s.h.type == kTypePad) continue;
    batch.emplace_back(s.h.sequence, at - s.size);
    ++expect;
    if ((s.h.flags & kFlagCommit) == 0) continue;
    for (const auto& [seq, off] : batch) {
      const std::byte* r = region_.data() + Physical(off);
      const Header rh = DecodeHeader(r);
      if (on_record) on_record(Record{seq, rh.timestamp_ns, {r + kHeaderSize, rh.length}});
      index_.emplace_back(seq, off);
    }
    batch.clear();
    last_batch = committed_;
    committed_ = at;
    next_seq_ = expect;
  }
  tail_ = committed_;
  pending_ = 0;
  stats_.end_offset = at;
  stats_.records = index_.size();
  stats_.uncommitted = batch.size();
  stats_.end = at - head_ >= log_size_       ? ReplayStats::End::kLogFull
               : stop.kind == Seen::kDamaged ? ReplayStats::End::kDamaged
                                             : ReplayStats::End::kNoRecord;
  stats_.end_detail = "journal: replay stopped at log offset " + std::to_string(at) +
                      " (sequence " + std::to_string(expect) + "): " + stop.why;
  // Only a damaged record can hide committed ones after it; the normal
  // end of the log costs no scan.
  stats_.commits_beyond = stats_.end == ReplayStats::End::kDamaged
                              ? CommitsBeyond(at, expect, last_incarnation, max_incarnation)
                              : 0;
  if (stats_.lost_commits()) {
    stats_.end_detail += "; " + std::to_string(stats_.commits_beyond) +
                         " later commits of this journal follow: committed records were lost";
  }
  // The last batch may be a commit a killed process never finished
  // persisting (every earlier one was persisted by a later commit or
  // open): durable before anything is appended after it.
  return PersistLogical(last_batch, committed_);
}

uint64_t Journal::CommitsBeyond(uint64_t from, uint64_t expect, uint32_t min_inc,
                                uint32_t max_inc) const {
  // Any 8-byte aligned offset past `from` may start a chain of this log's
  // records (the record at `from` may be damaged in its length). Payload
  // bytes checksummed are bounded: forged headers cannot make Open slow.
  uint64_t budget = 2 * log_size_;
  uint64_t most = 0;
  uint64_t q = from + 8;
  uint64_t pos = q % log_size_;  // kept with q: no division per step
  while (q - head_ < log_size_ && most < 2) {
    const uint64_t room = log_size_ - pos;
    if (room < kHeaderSize) {
      q += room;
      pos = 0;
      continue;
    }
    const std::byte* p = region_.data() + kLogOffset + pos;
    // (A damaged pad is followed by the record of its own sequence.)
    if (LoadLE<uint32_t>(p) != kRecordMagic || LoadLE<uint64_t>(p + 24) < expect ||
        LoadLE<uint64_t>(p + 24) - expect > log_size_) {
      q += 8;
      pos += 8;
      continue;
    }
    const uint64_t seq = LoadLE<uint64_t>(p + 24);
    uint64_t at = q;
    uint64_t next = seq;
    uint64_t commits = 0;
    uint32_t inc = min_inc;
    bool exhausted = false;
    while (at - head_ < log_size_) {
      const uint64_t at_room = log_size_ - at % log_size_;
      if (at_room < kHeaderSize) {
        at += at_room;
        continue;
      }
      const uint64_t cost =
          std::min<uint64_t>(LoadLE<uint32_t>(region_.data() + Physical(at) + 8), at_room);
      if (cost > budget) {
        exhausted = true;
        break;
      }
      budget -= cost;
      const Seen s = Examine(at, next, inc, max_inc);
      if (s.kind != Seen::kRecord) break;
      inc = s.h.incarnation;
      at += s.size;
      if (s.h.type == kTypePad) continue;
      ++next;
      if ((s.h.flags & kFlagCommit) != 0) ++commits;
    }
    most = std::max(most, commits);
    if (exhausted) break;
    q = at > q ? at : q + 8;
    pos = q % log_size_;
  }
  return most;
}

Status Journal::WriteSuperblock(uint64_t head, uint64_t head_seq, uint32_t head_inc) {
  Super s;
  s.uuid = uuid_;
  s.region_size = region_.size();
  s.log_size = log_size_;
  s.generation = generation_ + 1;
  s.head = head;
  s.head_seq = head_seq;
  s.incarnation = incarnation_;
  s.head_incarnation = head_inc;
  const uint64_t slot = s.generation % 2;  // the older slot: the newest stays valid
  EncodeSuper(s, region_.data() + slot * kSlotSize);
  // Only a persisted slot is the newest: after a failed persist the next
  // write goes to the same slot again, never over the durable newest.
  VNVRAM_RETURN_IF_ERROR(persist_(slot * kSlotSize, kSlotSize));
  generation_ = s.generation;
  return Status::Ok();
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
  if (!payload.empty()) std::memcpy(p + kHeaderSize, payload.data(), payload.size());
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
  if (Status st = PersistLogical(committed_, tail_); !st.ok()) {
    // Not committed: an open of this memory must not take the batch as
    // committed (the next commit persists it again, from committed_).
    last[5] = std::byte{0};
    StoreLE<uint32_t>(last + 12, HeaderCrc(last_payload_crc_, last));
    return st;
  }
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
  auto first_kept =
      std::find_if(index_.begin(), index_.end(), [&](const auto& e) { return e.first > sequence; });
  const bool empty = first_kept == index_.end();
  const uint64_t head = empty ? committed_ : first_kept->second;
  // An empty log: the record written at the head will be of this life.
  const uint32_t head_inc =
      empty ? incarnation_ : LoadLE<uint32_t>(region_.data() + Physical(head) + 16);
  // The head moves (and frees log space) only once the superblock is durable.
  VNVRAM_RETURN_IF_ERROR(WriteSuperblock(head, sequence + 1, head_inc));
  index_.erase(index_.begin(), first_kept);
  head_ = head;
  head_seq_ = sequence + 1;
  head_inc_ = head_inc;
  return Status::Ok();
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
