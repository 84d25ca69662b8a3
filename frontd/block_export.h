// BlockExport: the block semantics an NBD session serves, apart from the
// wire: byte-granular reads and writes, zeroing, making a range durable
// (FUA) and making everything written so far durable (FLUSH). The session
// has already checked every range against size(). Implementations must be
// thread-safe: every connection's session calls one export concurrently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "common/status.h"

namespace vnvram::frontd {

class BlockExport {
 public:
  virtual ~BlockExport() = default;

  virtual uint64_t size() const = 0;
  virtual bool read_only() const = 0;

  // Copies [offset, offset + dst.size()) out.
  virtual Status Read(uint64_t offset, std::span<std::byte> dst) = 0;
  // Stores `src` at `offset`; visible to every later Read at once, durable
  // after a Persist() covering it or the next Flush().
  virtual Status Write(uint64_t offset, std::span<const std::byte> src) = 0;
  // Stores zeroes over [offset, offset + length), like Write().
  virtual Status Zero(uint64_t offset, uint64_t length) = 0;
  // Makes [offset, offset + length) durable before returning (FUA).
  virtual Status Persist(uint64_t offset, uint64_t length) = 0;
  // Makes every byte stored so far, by any connection, durable.
  virtual Status Flush() = 0;
};

}  // namespace vnvram::frontd
