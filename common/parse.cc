#include "common/parse.h"

#include <algorithm>
#include <limits>

namespace vnvram {

namespace {

Status Bad(std::string_view what, std::string_view s, std::string_view why) {
  std::string msg(what);
  msg += " ";
  msg += QuoteForError(s);
  msg += ": ";
  msg += why;
  return Status::InvalidArgument(msg);
}

}  // namespace

Result<uint64_t> ParseU64(std::string_view s, std::string_view what) {
  if (s.empty()) return Bad(what, s, "empty");
  uint64_t v = 0;
  for (char ch : s) {
    if (ch < '0' || ch > '9') return Bad(what, s, "not a decimal number");
    const auto d = static_cast<uint64_t>(ch - '0');
    if (v > (std::numeric_limits<uint64_t>::max() - d) / 10) {
      return Bad(what, s, "too large");
    }
    v = v * 10 + d;
  }
  return v;
}

Result<uint64_t> ParseU64InRange(std::string_view s, uint64_t lo, uint64_t hi,
                                 std::string_view what) {
  auto v = ParseU64(s, what);
  if (!v.ok()) return v.status();
  if (*v < lo || *v > hi) {
    return Bad(what, s, "out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
  return v;
}

Result<uint32_t> ParseU32(std::string_view s, std::string_view what) {
  auto v = ParseU64InRange(s, 0, std::numeric_limits<uint32_t>::max(), what);
  if (!v.ok()) return v.status();
  return static_cast<uint32_t>(*v);
}

Result<uint16_t> ParseU16(std::string_view s, std::string_view what) {
  auto v = ParseU64InRange(s, 0, std::numeric_limits<uint16_t>::max(), what);
  if (!v.ok()) return v.status();
  return static_cast<uint16_t>(*v);
}

Result<int64_t> ParseI64(std::string_view s, std::string_view what) {
  bool neg = false;
  std::string_view digits = s;
  if (!digits.empty() && digits[0] == '-') {
    neg = true;
    digits.remove_prefix(1);
  }
  auto mag = ParseU64(digits, what);
  if (!mag.ok()) return Bad(what, s, digits.empty() ? "empty" : "not a decimal number");
  const uint64_t limit = neg ? static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) + 1
                             : static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  if (*mag > limit) return Bad(what, s, "out of range");
  if (neg) return static_cast<int64_t>(0 - *mag);
  return static_cast<int64_t>(*mag);
}

Result<uint64_t> ParseSize(std::string_view s, std::string_view what) {
  if (s.empty()) return Bad(what, s, "empty");
  size_t n = 0;
  while (n < s.size() && s[n] >= '0' && s[n] <= '9') ++n;
  if (n == 0) return Bad(what, s, "must start with a decimal number");
  auto base = ParseU64(s.substr(0, n), what);
  if (!base.ok()) return Bad(what, s, "too large");
  std::string_view suffix = s.substr(n);
  unsigned shift = 0;
  if (!suffix.empty()) {
    switch (suffix[0]) {
      case 'k':
      case 'K': shift = 10; break;
      case 'm':
      case 'M': shift = 20; break;
      case 'g':
      case 'G': shift = 30; break;
      case 't':
      case 'T': shift = 40; break;
      case 'b':
      case 'B': shift = 0; break;
      default: return Bad(what, s, "unknown suffix (use K, M, G or T)");
    }
    std::string_view rest = suffix.substr(1);
    if (suffix[0] == 'b' || suffix[0] == 'B') {
      if (!rest.empty()) return Bad(what, s, "trailing characters");
    } else if (!(rest.empty() || rest == "B" || rest == "b" || rest == "iB" || rest == "ib")) {
      return Bad(what, s, "trailing characters");
    }
  }
  if (shift > 0 && *base > (std::numeric_limits<uint64_t>::max() >> shift)) {
    return Bad(what, s, "too large");
  }
  return *base << shift;
}

std::string FormatSize(uint64_t bytes) {
  static constexpr struct {
    unsigned shift;
    char suffix;
  } kUnits[] = {{40, 'T'}, {30, 'G'}, {20, 'M'}, {10, 'K'}};
  if (bytes != 0) {
    for (const auto& u : kUnits) {
      const uint64_t unit = uint64_t{1} << u.shift;
      if (bytes % unit == 0) return std::to_string(bytes >> u.shift) + u.suffix;
    }
  }
  return std::to_string(bytes);
}

Result<DomId> ParseDomId(std::string_view s, std::string_view what) {
  auto v = ParseU64InRange(s, 0, kDomIdFirstReserved - 1, what);
  if (!v.ok()) return v.status();
  return static_cast<DomId>(*v);
}

Result<DevId> ParseDevId(std::string_view s, std::string_view what) {
  auto v = ParseU64InRange(s, 0, 0x7FFFFFFF, what);
  if (!v.ok()) return v.status();
  return static_cast<DevId>(*v);
}

std::string Uuid::ToString() const {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out += kHex[bytes[i] >> 4];
    out += kHex[bytes[i] & 15];
  }
  return out;
}

bool Uuid::IsNil() const {
  for (auto b : bytes) {
    if (b != 0) return false;
  }
  return true;
}

Result<Uuid> ParseUuid(std::string_view s, std::string_view what) {
  if (s.empty()) return Bad(what, s, "empty");
  if (s.size() != 36) return Bad(what, s, "must be 36 characters (8-4-4-4-12 hex)");
  Uuid u;
  size_t bi = 0;
  for (size_t i = 0; i < s.size();) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return Bad(what, s, "expected '-' at position " + std::to_string(i));
      ++i;
      continue;
    }
    auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    const int hi = hex(s[i]);
    const int lo = hex(s[i + 1]);
    if (hi < 0 || lo < 0) return Bad(what, s, "not a hex digit");
    u.bytes[bi++] = static_cast<uint8_t>((hi << 4) | lo);
    i += 2;
  }
  return u;
}

std::string QuoteForError(std::string_view s, size_t max_len) {
  std::string out = "'";
  for (size_t i = 0; i < s.size() && i < max_len; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  if (s.size() > max_len) out += "...";
  out += "'";
  return out;
}

Result<bool> ParseBool01(std::string_view s, std::string_view what) {
  if (s == "0") return false;
  if (s == "1") return true;
  return Bad(what, s, "must be 0 or 1");
}

std::string Printable(std::string_view s, size_t max) {
  std::string out;
  const size_t n = std::min(s.size(), max);
  out.reserve(n + 3);
  for (size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    out += (c >= 0x20 && c < 0x7F) ? static_cast<char>(c) : '?';
  }
  if (s.size() > max) out += "...";
  return out;
}

}  // namespace vnvram
