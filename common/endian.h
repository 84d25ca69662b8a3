// Explicit-endian encode/decode for wire formats (replication messages,
// vault files, journal records). Everything on our wires is little-endian;
// these helpers work on byte spans of any alignment. Pure; thread-safe.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>

namespace vnvram {

template <typename T>
requires std::is_unsigned_v<T>
constexpr T ByteSwap(T v) {
  T out = 0;
  for (size_t i = 0; i < sizeof(T); ++i) {
    out = static_cast<T>((out << 8) | ((v >> (8 * i)) & 0xFF));
  }
  return out;
}

template <typename T>
requires std::is_unsigned_v<T>
inline void StoreLE(std::byte* dst, T v) {
  if constexpr (std::endian::native == std::endian::big) v = ByteSwap(v);
  std::memcpy(dst, &v, sizeof(T));
}

template <typename T>
requires std::is_unsigned_v<T>
inline T LoadLE(const std::byte* src) {
  T v;
  std::memcpy(&v, src, sizeof(T));
  if constexpr (std::endian::native == std::endian::big) v = ByteSwap(v);
  return v;
}

template <typename T>
requires std::is_unsigned_v<T>
inline void StoreBE(std::byte* dst, T v) {
  if constexpr (std::endian::native == std::endian::little) v = ByteSwap(v);
  std::memcpy(dst, &v, sizeof(T));
}

template <typename T>
requires std::is_unsigned_v<T>
inline T LoadBE(const std::byte* src) {
  T v;
  std::memcpy(&v, src, sizeof(T));
  if constexpr (std::endian::native == std::endian::little) v = ByteSwap(v);
  return v;
}

// Appends fields to a growing buffer; never fails.
class ByteWriter {
 public:
  explicit ByteWriter(std::span<std::byte> out) : out_(out) {}
  template <typename T>
  bool PutLE(T v) {
    if (out_.size() - pos_ < sizeof(T)) return Overflow();
    StoreLE<T>(out_.data() + pos_, v);
    pos_ += sizeof(T);
    return true;
  }
  bool PutBytes(std::span<const std::byte> b) {
    if (out_.size() - pos_ < b.size()) return Overflow();
    if (!b.empty()) std::memcpy(out_.data() + pos_, b.data(), b.size());
    pos_ += b.size();
    return true;
  }
  size_t size() const { return pos_; }
  bool overflowed() const { return overflow_; }

 private:
  bool Overflow() {
    overflow_ = true;
    return false;
  }
  std::span<std::byte> out_;
  size_t pos_ = 0;
  bool overflow_ = false;
};

// Reads fields from a span that came from outside; every read is
// bounds-checked and a short buffer makes every later read fail.
class ByteReader {
 public:
  explicit ByteReader(std::span<const std::byte> in) : in_(in) {}
  template <typename T>
  bool GetLE(T* v) {
    if (in_.size() - pos_ < sizeof(T)) return Fail();
    *v = LoadLE<T>(in_.data() + pos_);
    pos_ += sizeof(T);
    return true;
  }
  // Returns a view of the next n bytes without copying.
  bool GetBytes(size_t n, std::span<const std::byte>* out) {
    if (in_.size() - pos_ < n) return Fail();
    *out = in_.subspan(pos_, n);
    pos_ += n;
    return true;
  }
  size_t remaining() const { return in_.size() - pos_; }
  bool failed() const { return failed_; }

 private:
  bool Fail() {
    failed_ = true;
    pos_ = in_.size();
    return false;
  }
  std::span<const std::byte> in_;
  size_t pos_ = 0;
  bool failed_ = false;
};

}  // namespace vnvram
