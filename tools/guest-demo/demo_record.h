// DemoRecord: the fixed-size, checksummed record vnvram-guest-demo writes
// into the region: slot i at kRecordsOffset + i * 64 holds record number i.
// Little-endian fields, CRC-32 over everything before the checksum. Pure
// functions; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace vnvram::demo {

inline constexpr size_t kRecordSize = 64;
inline constexpr uint64_t kRecordsOffset = 4096;
inline constexpr uint32_t kRecordMagic = 0x31524456;  // "VDR1"

// Encodes record `seq` (payload derived from seq, so it can be checked).
void EncodeRecord(uint64_t seq, uint64_t wall_ns, uint32_t writer, std::span<std::byte> out);

enum class RecordCheck { kValid, kEmpty, kCorrupt };
// kEmpty: all zero (never written). kCorrupt: anything else that is not a
// valid record number `seq`; `why` says what.
RecordCheck CheckRecord(uint64_t seq, std::span<const std::byte> in, std::string* why);

// The writer field of a record CheckRecord found valid (the process id,
// or the tag `write --tag` gave).
uint32_t RecordWriter(std::span<const std::byte> in);

uint64_t RecordOffset(uint64_t seq);
// How many records fit in a region of `size` bytes.
uint64_t RecordCapacity(uint64_t size);

uint32_t Crc32(std::span<const std::byte> data);

}  // namespace vnvram::demo
