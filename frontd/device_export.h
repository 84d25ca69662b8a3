// DeviceExport: the block semantics of vnvram-frontd over a vnvram::Device.
// READ copies out of the mapped region, WRITE and zeroing copy into it and
// mark its pages dirty, Persist() (FUA) persists the range before it
// returns, Flush() persists every dirty page (any connection's) and waits.
// Thread-safety: every method may be called from any thread. One mutex
// covers every region access and every Device call, so the span in hand is
// never used across a call that re-maps it (vnvram.hpp, "Region address"):
// after each call the generation is compared and the span taken again.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>

#include "common/result.h"
#include "frontd/block_export.h"
#include "frontd/dirty_pages.h"
#include "vnvram/vnvram.hpp"

namespace vnvram::frontd {

class DeviceExport final : public BlockExport {
 public:
  struct Options {
    bool read_only = false;
    // Dirty runs this many clean pages apart are persisted as one range.
    uint64_t merge_gap_pages = 16;
  };

  // `device` is open and outlives the export.
  static Result<std::unique_ptr<DeviceExport>> Create(Device& device, Options options);

  uint64_t size() const override { return size_; }
  bool read_only() const override { return read_only_; }
  Status Read(uint64_t offset, std::span<std::byte> dst) override;
  Status Write(uint64_t offset, std::span<const std::byte> src) override;
  Status Zero(uint64_t offset, uint64_t length) override;
  Status Persist(uint64_t offset, uint64_t length) override;
  Status Flush() override;

  // Pages stored to and not yet persisted.
  uint64_t dirty_pages() const;
  // Re-maps seen (the device's generation moved: backend restart, failover).
  uint64_t remaps() const;

 private:
  DeviceExport(Device& device, Options options);
  // Takes the span again when the generation moved or it is not whole;
  // kUnavailable when the device has no usable mapping.
  Status RefreshLocked();
  Status CheckRange(uint64_t offset, uint64_t length) const;

  Device& device_;
  const uint64_t size_;
  const bool read_only_;
  const uint64_t merge_gap_pages_;

  mutable std::mutex mu_;
  std::span<std::byte> span_;  // guarded by mu_
  uint64_t generation_ = 0;    // guarded by mu_: of span_
  uint64_t remaps_ = 0;        // guarded by mu_
  DirtyPages dirty_;           // guarded by mu_
};

}  // namespace vnvram::frontd
