#include "frontd/device_export.h"

#include <spdlog/spdlog.h>

#include <cstring>
#include <string>
#include <vector>

namespace vnvram::frontd {

Result<std::unique_ptr<DeviceExport>> DeviceExport::Create(Device& device, Options options) {
  if (device.size() == 0) return Status::FailedPrecondition("the device has no region");
  std::unique_ptr<DeviceExport> e(new DeviceExport(device, options));
  {
    std::lock_guard lock(e->mu_);
    VNVRAM_RETURN_IF_ERROR(e->RefreshLocked());
  }
  return e;
}

DeviceExport::DeviceExport(Device& device, Options options)
    : device_(device),
      size_(device.size()),
      read_only_(options.read_only),
      merge_gap_pages_(options.merge_gap_pages),
      dirty_(device.size()) {}

Status DeviceExport::RefreshLocked() {
  if (generation_ != 0 && device_.generation() == generation_ && span_.size() >= size_) {
    return Status::Ok();
  }
  const uint64_t before = generation_;
  // region() is itself a call that may finish a pending switch: the
  // generation read after it is the one of the span it returned.
  std::span<std::byte> r = device_.region();
  const uint64_t g = device_.generation();
  span_ = r;
  generation_ = g;
  if (before != 0 && g != before) {
    ++remaps_;
    spdlog::info("volume re-mapped: generation {} -> {}", before, g);
  }
  if (span_.size() < size_) {
    const Status e = device_.error();
    return Status::Unavailable("the device has no mapping" +
                               (e.ok() ? std::string() : ": " + e.ToString()));
  }
  return Status::Ok();
}

Status DeviceExport::CheckRange(uint64_t offset, uint64_t length) const {
  if (offset > size_ || length > size_ - offset) {
    return Status::OutOfRange("range [" + std::to_string(offset) + ", +" + std::to_string(length) +
                              ") beyond the volume's " + std::to_string(size_) + " bytes");
  }
  return Status::Ok();
}

Status DeviceExport::Read(uint64_t offset, std::span<std::byte> dst) {
  VNVRAM_RETURN_IF_ERROR(CheckRange(offset, dst.size()));
  std::lock_guard lock(mu_);
  VNVRAM_RETURN_IF_ERROR(RefreshLocked());
  if (!dst.empty()) std::memcpy(dst.data(), span_.data() + offset, dst.size());
  return Status::Ok();
}

Status DeviceExport::Write(uint64_t offset, std::span<const std::byte> src) {
  if (read_only_) return Status::PermissionDenied("the export is read-only");
  VNVRAM_RETURN_IF_ERROR(CheckRange(offset, src.size()));
  std::lock_guard lock(mu_);
  VNVRAM_RETURN_IF_ERROR(RefreshLocked());
  if (!src.empty()) std::memcpy(span_.data() + offset, src.data(), src.size());
  dirty_.Mark(offset, src.size());
  return Status::Ok();
}

Status DeviceExport::Zero(uint64_t offset, uint64_t length) {
  if (read_only_) return Status::PermissionDenied("the export is read-only");
  VNVRAM_RETURN_IF_ERROR(CheckRange(offset, length));
  std::lock_guard lock(mu_);
  VNVRAM_RETURN_IF_ERROR(RefreshLocked());
  if (length != 0) std::memset(span_.data() + offset, 0, length);
  dirty_.Mark(offset, length);
  return Status::Ok();
}

Status DeviceExport::Persist(uint64_t offset, uint64_t length) {
  VNVRAM_RETURN_IF_ERROR(CheckRange(offset, length));
  if (length == 0) return Status::Ok();
  std::lock_guard lock(mu_);
  VNVRAM_RETURN_IF_ERROR(RefreshLocked());
  Status s = device_.persist(offset, length);
  // A re-map during the call carried every stored byte over (vnvram.hpp);
  // only the span needs taking again.
  (void)RefreshLocked();
  // Under mu_ no store came between the call and now: the whole pages of
  // the range hold exactly what was persisted.
  if (s.ok()) dirty_.ClearCovered(offset, length);
  return s;
}

Status DeviceExport::Flush() {
  std::lock_guard lock(mu_);
  if (dirty_.empty()) return Status::Ok();
  VNVRAM_RETURN_IF_ERROR(RefreshLocked());
  const std::vector<ByteRun> runs = dirty_.Take(merge_gap_pages_);
  Status s;
  for (const ByteRun& r : runs) {
    s = device_.persist_async(r.offset, r.length);
    if (!s.ok()) break;
  }
  // Whatever was queued is waited for, even after a failed queueing.
  const Status drained = device_.drain();
  if (s.ok()) s = drained;
  (void)RefreshLocked();
  if (!s.ok()) {
    // Not known durable: keep it dirty for the next FLUSH.
    for (const ByteRun& r : runs) dirty_.Mark(r.offset, r.length);
  }
  return s;
}

uint64_t DeviceExport::dirty_pages() const {
  std::lock_guard lock(mu_);
  return dirty_.dirty_pages();
}

uint64_t DeviceExport::remaps() const {
  std::lock_guard lock(mu_);
  return remaps_;
}

}  // namespace vnvram::frontd
