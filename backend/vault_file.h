// VaultFile: the on-disk copy of one volume's region, written atomically
// and read back with every field and the data checksum checked (format in
// docs/backend.md). Pure functions over files; thread-safe as long as two
// callers do not write the same volume at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/parse.h"
#include "common/result.h"

namespace vnvram::backend {

inline constexpr char kVaultMagic[8] = {'V', 'N', 'V', 'R', 'V', 'L', 'T', '\0'};
inline constexpr uint32_t kVaultVersion = 1;
inline constexpr uint32_t kVaultHeaderSize = 64;

// What the header says about the region that follows it.
struct VaultHeader {
  Uuid volume;
  uint64_t region_size = 0;
  uint64_t durable_seq = 0;
  uint64_t data_checksum = 0;
};

// 64-bit FNV-1a, the checksum of the header and of the region bytes.
uint64_t VaultChecksum(std::span<const std::byte> bytes, uint64_t seed = 0xcbf29ce484222325ull);

// "<dir>/<uuid>.vault".
std::string VaultPath(const std::string& dir, const Uuid& volume);

// Encodes the 64-byte header (explicit little-endian).
std::vector<std::byte> EncodeVaultHeader(const VaultHeader& h);
// Decodes and checks magic, version, header size and header checksum.
// kCorruption naming the bad field.
Result<VaultHeader> DecodeVaultHeader(std::span<const std::byte> bytes);

// Writes `region` with its sequence to VaultPath(dir, volume) atomically.
// The data checksum is computed from the bytes actually written.
Status WriteVault(const std::string& dir, const Uuid& volume, uint64_t durable_seq,
                  std::span<const std::byte> region);

// Reads and checks the header of the vault of `volume`. kNotFound when
// there is no vault file; kCorruption when a check fails (magic, version,
// header checksum, another volume's uuid, a size that is not a non-zero
// multiple of 4096 or exceeds `max_region_size`, a file length that is not
// header + size).
Result<VaultHeader> ReadVaultHeader(const std::string& dir, const Uuid& volume,
                                    uint64_t max_region_size);

// Reads the region bytes of a vault whose header ReadVaultHeader returned
// into `out` (exactly header.region_size bytes) and checks the data
// checksum: kCorruption when it differs (then `out` holds garbage the caller
// must not use).
Status ReadVaultData(const std::string& dir, const VaultHeader& header, std::span<std::byte> out);

}  // namespace vnvram::backend
