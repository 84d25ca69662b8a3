// The C API (include/vnvram/vnvram.h) over vnvram::Device: status codes
// become negative errno values, messages go to a thread-local string
// (frontend/c_api_internal.h).
// Thread-safety: as vnvram::Device; the last error is per thread.
#include <cerrno>
#include <memory>
#include <string>

#include "frontend/c_api_internal.h"
#include "vnvram/vnvram.h"
#include "vnvram/vnvram.hpp"

namespace {

using vnvram::capi::Guard;
using vnvram::capi::Ret;

int NullHandle() {
  return vnvram::capi::NullHandle("device");
}

}  // namespace

extern "C" {

static vnvram_dev* OpenWith(const char* platform, uint32_t devid, const char* volume,
                            int timeout_ms) {
  vnvram_dev* out = nullptr;
  const int rc = Guard([&] {
    vnvram::OpenOptions o;
    if (platform != nullptr) o.platform = platform;
    o.devid = devid;
    if (volume != nullptr) {
      o.volume = volume;
      if (o.volume.empty()) return Ret(vnvram::Status::InvalidArgument("empty volume UUID"));
    }
    if (timeout_ms > 0) o.timeout = std::chrono::milliseconds(timeout_ms);
    auto d = vnvram::Device::Open(o);
    if (!d.ok()) return Ret(d.status());
    out = new vnvram_dev{std::move(d).value()};
    return Ret(vnvram::Status::Ok());
  });
  if (rc != 0) errno = -rc;
  return out;
}

vnvram_dev* vnvram_open(const char* platform, uint32_t devid, int timeout_ms) {
  return OpenWith(platform, devid, nullptr, timeout_ms);
}

vnvram_dev* vnvram_open_volume(const char* platform, const char* volume_uuid, int timeout_ms) {
  if (volume_uuid == nullptr) {
    Ret(vnvram::Status::InvalidArgument("NULL volume UUID"));
    errno = EINVAL;
    return nullptr;
  }
  return OpenWith(platform, 0, volume_uuid, timeout_ms);
}

void* vnvram_region(vnvram_dev* dev, size_t* size, uint64_t* generation) {
  if (dev == nullptr) {
    NullHandle();
    return nullptr;
  }
  std::span<std::byte> r = dev->device->region();
  if (size != nullptr) *size = r.size();
  if (generation != nullptr) *generation = dev->device->generation();
  return r.empty() ? nullptr : r.data();
}

int vnvram_persist(vnvram_dev* dev, uint64_t offset, uint64_t length) {
  if (dev == nullptr) return NullHandle();
  return Guard([&] { return Ret(dev->device->persist(offset, length)); });
}

int vnvram_memcpy_persist(vnvram_dev* dev, uint64_t offset, const void* src, size_t len) {
  if (dev == nullptr) return NullHandle();
  if (src == nullptr && len != 0) return Ret(vnvram::Status::InvalidArgument("NULL source"));
  return Guard([&] {
    return Ret(dev->device->memcpy_persist(offset, {static_cast<const std::byte*>(src), len}));
  });
}

int vnvram_persist_async(vnvram_dev* dev, uint64_t offset, uint64_t length) {
  if (dev == nullptr) return NullHandle();
  return Guard([&] { return Ret(dev->device->persist_async(offset, length)); });
}

int vnvram_flush(vnvram_dev* dev) {
  if (dev == nullptr) return NullHandle();
  return Guard([&] { return Ret(dev->device->flush()); });
}

int vnvram_drain(vnvram_dev* dev) {
  if (dev == nullptr) return NullHandle();
  return Guard([&] { return Ret(dev->device->drain()); });
}

int vnvram_drain_to(vnvram_dev* dev, size_t at_most) {
  if (dev == nullptr) return NullHandle();
  return Guard([&] { return Ret(dev->device->drain_to(at_most)); });
}

int vnvram_barrier(vnvram_dev* dev) {
  if (dev == nullptr) return NullHandle();
  return Guard([&] { return Ret(dev->device->barrier()); });
}

int vnvram_read(vnvram_dev* dev, uint64_t offset, void* buf, size_t len) {
  if (dev == nullptr) return NullHandle();
  if (buf == nullptr && len != 0) return Ret(vnvram::Status::InvalidArgument("NULL buffer"));
  return Guard([&] { return Ret(dev->device->read(offset, {static_cast<std::byte*>(buf), len})); });
}

int vnvram_write(vnvram_dev* dev, uint64_t offset, const void* buf, size_t len) {
  if (dev == nullptr) return NullHandle();
  if (buf == nullptr && len != 0) return Ret(vnvram::Status::InvalidArgument("NULL buffer"));
  return Guard([&] {
    return Ret(dev->device->write(offset, {static_cast<const std::byte*>(buf), len}));
  });
}

uint64_t vnvram_durable_seq(vnvram_dev* dev) {
  return dev == nullptr ? 0 : dev->device->durable_seq();
}

int vnvram_close(vnvram_dev* dev) {
  if (dev == nullptr) return 0;
  const int rc = Guard([&] { return Ret(dev->device->close()); });
  delete dev;
  return rc;
}

const char* vnvram_last_error(void) {
  return vnvram::capi::LastError();
}

}  // extern "C"
