#include "journal/payload_pattern.h"

#include <algorithm>
#include <cstring>

#include "common/endian.h"

namespace vnvram::journal {
namespace {

// splitmix64: a well-mixed 64-bit function of its input.
uint64_t Mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// The 8 pattern bytes at word `word` of record `sequence`.
uint64_t Word(uint64_t sequence, uint64_t word) {
  return Mix(sequence * 0x100000001B3ull ^ Mix(word));
}

}  // namespace

uint32_t PatternSize(uint64_t sequence, SizeRange range) {
  if (range.max <= range.min) return range.min;
  const uint64_t span = uint64_t{range.max} - range.min + 1;
  return range.min + static_cast<uint32_t>(Mix(sequence ^ 0x5A17E5EEDull) % span);
}

void FillPattern(uint64_t sequence, std::span<std::byte> out) {
  size_t i = 0;
  for (uint64_t w = 0; i < out.size(); ++w) {
    std::byte word[8];
    StoreLE<uint64_t>(word, Word(sequence, w));
    const size_t n = std::min<size_t>(8, out.size() - i);
    std::memcpy(out.data() + i, word, n);
    i += n;
  }
}

std::optional<std::string> CheckPattern(uint64_t sequence, std::span<const std::byte> payload,
                                        std::optional<SizeRange> range) {
  if (range) {
    const uint32_t want = PatternSize(sequence, *range);
    if (payload.size() != want) {
      return "length " + std::to_string(payload.size()) + ", want " + std::to_string(want);
    }
  }
  size_t i = 0;
  for (uint64_t w = 0; i < payload.size(); ++w) {
    std::byte word[8];
    StoreLE<uint64_t>(word, Word(sequence, w));
    const size_t n = std::min<size_t>(8, payload.size() - i);
    if (std::memcmp(payload.data() + i, word, n) != 0) {
      size_t k = 0;
      while (payload[i + k] == word[k]) ++k;
      return "byte " + std::to_string(i + k) + " differs from the pattern";
    }
    i += n;
  }
  return std::nullopt;
}

}  // namespace vnvram::journal
