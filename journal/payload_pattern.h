// Payload pattern: the deterministic record payloads that vnvram-journal
// writes and checks, and the journal tests use: the size and every byte of
// record `sequence` follow from the sequence number (and the size range)
// alone, so a replay is checked without the writer. Pure functions;
// thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

namespace vnvram::journal {

// Payload sizes in [min, max] bytes; min == max for a fixed size.
struct SizeRange {
  uint32_t min = 64;
  uint32_t max = 64;
};

// The payload size of record `sequence`.
uint32_t PatternSize(uint64_t sequence, SizeRange range);
// Fills `out` with the pattern of record `sequence` (any length).
void FillPattern(uint64_t sequence, std::span<std::byte> out);
// Empty when `payload` is the pattern of record `sequence` (and, with a
// range, has its size); otherwise why not, naming the first bad byte.
std::optional<std::string> CheckPattern(uint64_t sequence, std::span<const std::byte> payload,
                                        std::optional<SizeRange> range);

}  // namespace vnvram::journal
