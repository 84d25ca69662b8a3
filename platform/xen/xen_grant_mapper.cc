#include "platform/xen/xen_grant_mapper.h"

#include <spdlog/spdlog.h>
#include <sys/mman.h>

#include <cerrno>
#include <string>
#include <utility>
#include <vector>

#include "platform/xen/xen_module_param.h"
#include "platform/xen/xen_tool_logger.h"

// Xen 4.17's library headers have no extern "C" guards of their own.
extern "C" {
#include <xengnttab.h>
}

namespace vnvram::xen {
namespace {

using platform::GrantRef;
using platform::kPageSize;

constexpr uint32_t kNoNotifyOffset = UINT32_MAX;  // libxengnttab's "-1"
constexpr evtchn_port_t kNoNotifyPort = UINT32_MAX;

class XenGrantMapping final : public platform::GrantMapping {
 public:
  XenGrantMapping(std::shared_ptr<xengnttab_handle> handle, void* addr, size_t pages, DomId granter)
      : handle_(std::move(handle)), addr_(addr), pages_(pages), granter_(granter) {}

  ~XenGrantMapping() override {
    if (xengnttab_unmap(handle_.get(), addr_, static_cast<uint32_t>(pages_)) != 0) {
      const int err = errno;
      spdlog::error("{}",
                    Status::FromErrno(err, "xengnttab_unmap(" + std::to_string(pages_) +
                                               " pages of domain " + std::to_string(granter_) + ")")
                        .message());
    }
  }

  XenGrantMapping(const XenGrantMapping&) = delete;
  XenGrantMapping& operator=(const XenGrantMapping&) = delete;

  std::span<std::byte> data() override {
    return {static_cast<std::byte*>(addr_), pages_ * kPageSize};
  }
  DomId granter() const override { return granter_; }

 private:
  const std::shared_ptr<xengnttab_handle> handle_;
  void* const addr_;
  const size_t pages_;
  const DomId granter_;
};

std::string Describe(DomId granter, std::span<const GrantRef> refs, bool writable,
                     const std::optional<platform::UnmapNotify>& notify) {
  std::string s = "(domain " + std::to_string(granter) + ", ";
  if (refs.size() == 1) {
    s += "ref " + std::to_string(refs[0]);
  } else {
    s += std::to_string(refs.size()) + " refs";
    if (!refs.empty()) s += " from " + std::to_string(refs[0]);
  }
  s += writable ? ", writable" : ", read-only";
  if (notify && notify->byte_offset) s += ", notify byte " + std::to_string(*notify->byte_offset);
  if (notify && notify->port) s += ", notify port " + std::to_string(*notify->port);
  return s + ")";
}

int Prot(bool writable) {
  return writable ? PROT_READ | PROT_WRITE : PROT_READ;
}

}  // namespace

XenGrantMapper::XenGrantMapper(std::shared_ptr<xengntdev_handle> handle)
    : handle_(std::move(handle)) {}

Result<std::unique_ptr<XenGrantMapper>> XenGrantMapper::Open(uint32_t max_grants) {
  xengnttab_handle* h = xengnttab_open(ToolLogger(), 0);
  if (h == nullptr) {
    const int err = errno;
    if (err == ENOENT || err == ENODEV || err == ENXIO) {
      return Status(Code::kUnavailable,
                    "xengnttab_open: /dev/xen/gntdev absent: not running on Xen, or the "
                    "xen-gntdev module is not loaded",
                    err);
    }
    return Status::FromErrno(err, "xengnttab_open /dev/xen/gntdev");
  }
  std::shared_ptr<xengnttab_handle> handle(h, [](xengnttab_handle* p) { xengnttab_close(p); });
  if (max_grants > 0 && xengnttab_set_max_grants(h, max_grants) != 0) {
    return Status::FromErrno(errno, "xengnttab_set_max_grants(" + std::to_string(max_grants) + ")");
  }
  return std::unique_ptr<XenGrantMapper>(new XenGrantMapper(std::move(handle)));
}

void* XenGrantMapper::RawMap(DomId granter, std::span<const GrantRef> refs, int prot, int* err) {
  // The library takes a non-const array it does not modify.
  std::vector<uint32_t> copy(refs.begin(), refs.end());
  void* addr = xengnttab_map_domain_grant_refs(handle_.get(), static_cast<uint32_t>(copy.size()),
                                               granter, copy.data(), prot);
  *err = addr == nullptr ? errno : 0;
  return addr;
}

Status XenGrantMapper::DiagnoseMapFailure(int err, const std::string& what, DomId granter,
                                          std::span<const GrantRef> refs, bool writable,
                                          bool with_notify) {
  if (err != EINVAL) return Status::FromErrno(err, what);
  const auto limit = ReadModuleParam("xen_gntdev", "limit");
  if (limit && refs.size() > *limit) {
    return Status(Code::kResourceExhausted,
                  what + ": more refs than gntdev maps in one request (limit " +
                      std::to_string(*limit) + ", /sys/module/xen_gntdev/parameters/limit)",
                  err);
  }
  // Each probe that succeeds is unmapped at once: it only explains the error.
  auto probe = [&](bool probe_writable) {
    int probe_err = 0;
    void* addr = RawMap(granter, refs, Prot(probe_writable), &probe_err);
    if (addr == nullptr) return false;
    if (xengnttab_unmap(handle_.get(), addr, static_cast<uint32_t>(refs.size())) != 0) {
      spdlog::error("{}", Status::FromErrno(errno, "xengnttab_unmap of probe " + what).message());
    }
    return true;
  };
  if (with_notify && probe(writable)) {
    return Status(Code::kInvalidArgument,
                  what +
                      ": the map works without unmap notify: is the notify port bound by "
                      "this process?",
                  err);
  }
  if (writable && probe(false)) {
    return Status(Code::kPermissionDenied,
                  what + ": granted read-only; a writable mapping is refused", err);
  }
  return Status(Code::kPermissionDenied,
                what + ": refused by Xen: not granted to this domain, not in use, or revoked", err);
}

Result<std::unique_ptr<platform::GrantMapping>> XenGrantMapper::Map(
    DomId granter, std::span<const GrantRef> refs, bool writable,
    std::optional<platform::UnmapNotify> notify) {
  if (notify && !notify->byte_offset && !notify->port) notify.reset();
  const std::string what = "map grants " + Describe(granter, refs, writable, notify);
  if (granter >= kDomIdFirstReserved) {
    return Status::InvalidArgument(what + ": not an ordinary domain id");
  }
  if (refs.empty()) return Status::InvalidArgument(what + ": no refs");
  if (refs.size() > kMaxRefsPerMap) {
    return Status::OutOfRange(what + ": more than " + std::to_string(kMaxRefsPerMap) +
                              " refs in one call");
  }
  if (notify && refs.size() != 1) {
    return Status::NotSupported(what + ": Xen supports unmap notify on single-page maps only");
  }
  if (notify && notify->byte_offset) {
    if (*notify->byte_offset >= kPageSize) {
      return Status::OutOfRange(what + ": notify byte outside the page");
    }
    if (!writable) {
      return Status::InvalidArgument(what + ": clearing a notify byte needs a writable mapping");
    }
  }

  void* addr = nullptr;
  int err = 0;
  if (notify) {
    addr = xengnttab_map_grant_ref_notify(handle_.get(), granter, refs[0], Prot(writable),
                                          notify->byte_offset.value_or(kNoNotifyOffset),
                                          notify->port.value_or(kNoNotifyPort));
    err = addr == nullptr ? errno : 0;
  } else {
    addr = RawMap(granter, refs, Prot(writable), &err);
  }
  if (addr == nullptr) {
    return DiagnoseMapFailure(err, what, granter, refs, writable, notify.has_value());
  }
  return std::unique_ptr<platform::GrantMapping>(
      new XenGrantMapping(handle_, addr, refs.size(), granter));
}

}  // namespace vnvram::xen
