#include "tools/guest-demo/demo_record.h"

#include <cstring>

#include "common/endian.h"

namespace vnvram::demo {
namespace {

constexpr size_t kCrcOffset = kRecordSize - 4;

}  // namespace

uint32_t Crc32(std::span<const std::byte> data) {
  uint32_t crc = 0xFFFFFFFFu;
  for (std::byte b : data) {
    crc ^= static_cast<uint32_t>(b);
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

uint64_t RecordOffset(uint64_t seq) {
  return kRecordsOffset + seq * kRecordSize;
}

uint64_t RecordCapacity(uint64_t size) {
  return size <= kRecordsOffset ? 0 : (size - kRecordsOffset) / kRecordSize;
}

void EncodeRecord(uint64_t seq, uint64_t wall_ns, uint32_t writer, std::span<std::byte> out) {
  std::byte rec[kRecordSize] = {};
  StoreLE<uint32_t>(rec + 0, kRecordMagic);
  StoreLE<uint32_t>(rec + 4, writer);
  StoreLE<uint64_t>(rec + 8, seq);
  StoreLE<uint64_t>(rec + 16, wall_ns);
  for (size_t i = 24; i < kCrcOffset; ++i) {
    rec[i] = static_cast<std::byte>((seq * 31 + i) & 0xFF);
  }
  StoreLE<uint32_t>(rec + kCrcOffset, Crc32({rec, kCrcOffset}));
  std::memcpy(out.data(), rec, kRecordSize);
}

RecordCheck CheckRecord(uint64_t seq, std::span<const std::byte> in, std::string* why) {
  std::byte rec[kRecordSize];
  std::memcpy(rec, in.data(), kRecordSize);  // one read of shared memory
  bool zero = true;
  for (std::byte b : rec) zero = zero && b == std::byte{0};
  if (zero) return RecordCheck::kEmpty;
  if (LoadLE<uint32_t>(rec + 0) != kRecordMagic) {
    *why = "bad magic";
    return RecordCheck::kCorrupt;
  }
  if (LoadLE<uint32_t>(rec + kCrcOffset) != Crc32({rec, kCrcOffset})) {
    *why = "checksum mismatch";
    return RecordCheck::kCorrupt;
  }
  if (LoadLE<uint64_t>(rec + 8) != seq) {
    *why = "holds record " + std::to_string(LoadLE<uint64_t>(rec + 8));
    return RecordCheck::kCorrupt;
  }
  for (size_t i = 24; i < kCrcOffset; ++i) {
    if (rec[i] != static_cast<std::byte>((seq * 31 + i) & 0xFF)) {
      *why = "payload mismatch";
      return RecordCheck::kCorrupt;
    }
  }
  return RecordCheck::kValid;
}

uint32_t RecordWriter(std::span<const std::byte> in) {
  std::byte rec[8];
  std::memcpy(rec, in.data(), sizeof(rec));
  return LoadLE<uint32_t>(rec + 4);
}

}  // namespace vnvram::demo
