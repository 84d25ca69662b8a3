// Strict parsers for every string that comes from outside the process:
// xenstore values a guest wrote, config files, command lines, peer messages.
// Each rejects empty input, signs where none belong, trailing characters and
// overflow, and its error message names the bad value. Pure functions;
// thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace vnvram {

// Decimal only ("0x10", "+1", " 1", "1 ", "01x" are errors; "007" is 7).
// `what` names the value in the error: "ring-ref", "--size", ...
Result<uint64_t> ParseU64(std::string_view s, std::string_view what = "value");
Result<uint32_t> ParseU32(std::string_view s, std::string_view what = "value");
Result<uint16_t> ParseU16(std::string_view s, std::string_view what = "value");
Result<int64_t> ParseI64(std::string_view s, std::string_view what = "value");
// Decimal in [lo, hi].
Result<uint64_t> ParseU64InRange(std::string_view s, uint64_t lo, uint64_t hi,
                                 std::string_view what = "value");

// A size in bytes: decimal with an optional binary suffix K, M, G, T
// (case-insensitive, optional trailing "iB" or "B": 64M, 64MiB, 4k, 4096).
Result<uint64_t> ParseSize(std::string_view s, std::string_view what = "size");
// Formats bytes the way ParseSize reads them, exact when possible ("64M").
std::string FormatSize(uint64_t bytes);

// Xen domain id: 0..32751 (DOMID_FIRST_RESERVED - 1).
using DomId = uint16_t;
inline constexpr DomId kDomIdFirstReserved = 0x7FF0;
Result<DomId> ParseDomId(std::string_view s, std::string_view what = "domain id");

// xenbus device id: a non-negative decimal that fits in 31 bits, as
// libxl and the Linux xenbus drivers use.
using DevId = uint32_t;
Result<DevId> ParseDevId(std::string_view s, std::string_view what = "device id");

// RFC 4122 textual UUID: 8-4-4-4-12 hex digits, case-insensitive.
struct Uuid {
  std::array<uint8_t, 16> bytes{};
  bool operator==(const Uuid&) const = default;
  // Lower-case canonical form.
  std::string ToString() const;
  bool IsNil() const;
};
Result<Uuid> ParseUuid(std::string_view s, std::string_view what = "UUID");

// Quotes a value for a one-line error message: printable ASCII kept,
// quotes, backslashes and other bytes escaped as \xHH, values longer than
// `max_len` cut with "...". Safe on anything a guest or peer wrote.
std::string QuoteForError(std::string_view s, size_t max_len = 64);

// `s` shortened to `max` bytes with every byte outside printable ASCII
// replaced by '?' (and "..." when cut), for error messages and error nodes.
std::string Printable(std::string_view s, size_t max = 64);

// Boolean as xenstore and configs write it: "0"/"1" only.
Result<bool> ParseBool01(std::string_view s, std::string_view what = "flag");

}  // namespace vnvram
