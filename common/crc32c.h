// CRC-32C (Castagnoli, polynomial 0x1EDC6F41, reflected 0x82F63B78) as used
// by iSCSI, ext4 and our wire formats (replication frames, journal records).
// Uses the SSE4.2 crc32 instruction when the CPU has it, a slicing-by-8
// table otherwise; both give identical results. Pure; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace vnvram {

// CRC-32C of `data` (initial value 0, as the standard check value
// Crc32c("123456789") == 0xE3069283 defines it).
uint32_t Crc32c(std::span<const std::byte> data);

// Continues a CRC: Crc32cExtend(Crc32c(a), b) == Crc32c(a ++ b).
uint32_t Crc32cExtend(uint32_t crc, std::span<const std::byte> data);

// The table implementation alone, for tests and for comparison.
uint32_t Crc32cExtendSoftware(uint32_t crc, std::span<const std::byte> data);

// True when Crc32c uses the CPU instruction.
bool Crc32cHardwareAvailable();

}  // namespace vnvram
