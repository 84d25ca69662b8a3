#include "common/crc32c.h"

#include <array>
#include <cstring>

#include "common/endian.h"

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace vnvram {

namespace {

constexpr uint32_t kPoly = 0x82F63B78u;  // reflected Castagnoli polynomial

// kTables[k][b]: the CRC of byte b followed by k zero bytes (slicing-by-8).
constexpr std::array<std::array<uint32_t, 256>, 8> MakeTables() {
  std::array<std::array<uint32_t, 256>, 8> t{};
  for (uint32_t b = 0; b < 256; ++b) {
    uint32_t c = b;
    for (int i = 0; i < 8; ++i) c = (c >> 1) ^ ((c & 1u) ? kPoly : 0u);
    t[0][b] = c;
  }
  for (size_t k = 1; k < 8; ++k) {
    for (uint32_t b = 0; b < 256; ++b) t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xFF];
  }
  return t;
}

constexpr auto kTables = MakeTables();

uint32_t ExtendRaw(uint32_t c, const std::byte* p, size_t n) {
  while (n >= 8) {
    const uint32_t lo = LoadLE<uint32_t>(p) ^ c;
    const uint32_t hi = LoadLE<uint32_t>(p + 4);
    c = kTables[7][lo & 0xFF] ^ kTables[6][(lo >> 8) & 0xFF] ^ kTables[5][(lo >> 16) & 0xFF] ^
        kTables[4][lo >> 24] ^ kTables[3][hi & 0xFF] ^ kTables[2][(hi >> 8) & 0xFF] ^
        kTables[1][(hi >> 16) & 0xFF] ^ kTables[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n--) c = (c >> 8) ^ kTables[0][(c ^ static_cast<uint8_t>(*p++)) & 0xFF];
  return c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t ExtendHardware(uint32_t c, const std::byte* p,
                                                          size_t n) {
  uint64_t c64 = c;
  while (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);  // x86 is little-endian, as the CRC wants
    c64 = _mm_crc32_u64(c64, v);
    p += 8;
    n -= 8;
  }
  uint32_t c32 = static_cast<uint32_t>(c64);
  while (n--) c32 = _mm_crc32_u8(c32, static_cast<uint8_t>(*p++));
  return c32;
}

bool DetectHardware() noexcept {
  __builtin_cpu_init();
  return __builtin_cpu_supports("sse4.2");
}
#else
uint32_t ExtendHardware(uint32_t c, const std::byte* p, size_t n) {
  return ExtendRaw(c, p, n);
}
bool DetectHardware() noexcept {
  return false;
}
#endif

const bool kHardware = DetectHardware();

}  // namespace

uint32_t Crc32cExtendSoftware(uint32_t crc, std::span<const std::byte> data) {
  return ~ExtendRaw(~crc, data.data(), data.size());
}

uint32_t Crc32cExtend(uint32_t crc, std::span<const std::byte> data) {
  if (kHardware) return ~ExtendHardware(~crc, data.data(), data.size());
  return Crc32cExtendSoftware(crc, data);
}

uint32_t Crc32c(std::span<const std::byte> data) {
  return Crc32cExtend(0, data);
}

bool Crc32cHardwareAvailable() {
  return kHardware;
}

}  // namespace vnvram
