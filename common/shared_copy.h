// Copies of fixed-size records into and out of memory shared with another
// domain (ring slots), one relaxed atomic access per 8-byte word: the other
// side may write the same memory at any time. Each word is read or written
// exactly once (RING_COPY_REQUEST's volatile copy does the same on the
// hardware, but is a data race in C++ terms, which TSan rightly reports);
// a copy may be torn between words and is validated afterwards like any
// other untrusted value. Stateless; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace vnvram {

template <typename T>
concept SharedRecord = std::is_trivially_copyable_v<T> && sizeof(T) % sizeof(uint64_t) == 0 &&
                       alignof(T) >= alignof(uint64_t);

// *out = *src, each word of *src loaded once.
template <SharedRecord T>
void CopyFromShared(const T* src, T* out) {
  const auto* words = reinterpret_cast<const uint64_t*>(src);
  uint64_t copy[sizeof(T) / sizeof(uint64_t)];
  for (size_t i = 0; i < std::size(copy); ++i)
    copy[i] = __atomic_load_n(words + i, __ATOMIC_RELAXED);
  std::memcpy(out, copy, sizeof copy);
}

// *dst = value, each word of *dst stored once.
template <SharedRecord T>
void StoreToShared(T* dst, const T& value) {
  uint64_t copy[sizeof(T) / sizeof(uint64_t)];
  std::memcpy(copy, &value, sizeof copy);
  auto* words = reinterpret_cast<uint64_t*>(dst);
  for (size_t i = 0; i < std::size(copy); ++i)
    __atomic_store_n(words + i, copy[i], __ATOMIC_RELAXED);
}

}  // namespace vnvram
