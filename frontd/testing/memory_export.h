// MemoryExport: test support: a BlockExport over two byte arrays, what the
// clients see and what is durable, so tests can check FUA and FLUSH (Persist
// copies a range across, Flush everything); faults can be injected (the
// next calls fail with a given code). Thread-safe (one mutex).
#pragma once

#include <cstring>
#include <mutex>
#include <span>
#include <vector>

#include "frontd/block_export.h"

namespace vnvram::frontd::testing {

class MemoryExport final : public BlockExport {
 public:
  explicit MemoryExport(uint64_t size, bool read_only = false)
      : visible_(size), durable_(size), read_only_(read_only) {}

  uint64_t size() const override { return visible_.size(); }
  bool read_only() const override { return read_only_; }

  Status Read(uint64_t offset, std::span<std::byte> dst) override {
    std::lock_guard lock(mu_);
    VNVRAM_RETURN_IF_ERROR(FaultLocked());
    VNVRAM_RETURN_IF_ERROR(RangeLocked(offset, dst.size()));
    if (!dst.empty()) std::memcpy(dst.data(), visible_.data() + offset, dst.size());
    return Status::Ok();
  }
  Status Write(uint64_t offset, std::span<const std::byte> src) override {
    std::lock_guard lock(mu_);
    VNVRAM_RETURN_IF_ERROR(FaultLocked());
    VNVRAM_RETURN_IF_ERROR(RangeLocked(offset, src.size()));
    if (!src.empty()) std::memcpy(visible_.data() + offset, src.data(), src.size());
    return Status::Ok();
  }
  Status Zero(uint64_t offset, uint64_t length) override {
    std::lock_guard lock(mu_);
    VNVRAM_RETURN_IF_ERROR(FaultLocked());
    VNVRAM_RETURN_IF_ERROR(RangeLocked(offset, length));
    if (length != 0) std::memset(visible_.data() + offset, 0, length);
    return Status::Ok();
  }
  Status Persist(uint64_t offset, uint64_t length) override {
    std::lock_guard lock(mu_);
    VNVRAM_RETURN_IF_ERROR(FaultLocked());
    VNVRAM_RETURN_IF_ERROR(RangeLocked(offset, length));
    ++persists_;
    if (length != 0) std::memcpy(durable_.data() + offset, visible_.data() + offset, length);
    return Status::Ok();
  }
  Status Flush() override {
    std::lock_guard lock(mu_);
    VNVRAM_RETURN_IF_ERROR(FaultLocked());
    ++flushes_;
    durable_ = visible_;
    return Status::Ok();
  }

  // The next `count` calls fail with `code`.
  void FailNext(int count, Code code) {
    std::lock_guard lock(mu_);
    fail_count_ = count;
    fail_code_ = code;
  }
  std::vector<std::byte> visible() const {
    std::lock_guard lock(mu_);
    return visible_;
  }
  std::vector<std::byte> durable() const {
    std::lock_guard lock(mu_);
    return durable_;
  }
  int flushes() const {
    std::lock_guard lock(mu_);
    return flushes_;
  }
  int persists() const {
    std::lock_guard lock(mu_);
    return persists_;
  }

 private:
  Status FaultLocked() {
    if (fail_count_ == 0) return Status::Ok();
    --fail_count_;
    return Status(fail_code_, "injected fault");
  }
  Status RangeLocked(uint64_t offset, uint64_t length) const {
    if (offset > visible_.size() || length > visible_.size() - offset) {
      return Status::OutOfRange("beyond the export");
    }
    return Status::Ok();
  }

  mutable std::mutex mu_;
  std::vector<std::byte> visible_;
  std::vector<std::byte> durable_;
  const bool read_only_;
  int fail_count_ = 0;
  Code fail_code_ = Code::kIoError;
  int flushes_ = 0;
  int persists_ = 0;
};

}  // namespace vnvram::frontd::testing
