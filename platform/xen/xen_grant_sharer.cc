#include "platform/xen/xen_grant_sharer.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>

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

constexpr uint32_t kNoNotifyOffset = UINT32_MAX;  // libxengntshr's "-1"
constexpr evtchn_port_t kNoNotifyPort = UINT32_MAX;

class XenSharedPages final : public platform::SharedPages {
 public:
  XenSharedPages(std::shared_ptr<xengntshr_handle> handle, void* addr, std::vector<GrantRef> refs,
                 DomId grantee)
      : handle_(std::move(handle)), addr_(addr), refs_(std::move(refs)), grantee_(grantee) {}

  ~XenSharedPages() override {
    if (xengntshr_unshare(handle_.get(), addr_, static_cast<uint32_t>(refs_.size())) != 0) {
      const int err = errno;
      spdlog::error("xengntshr_unshare({} pages granted to domain {}): {}", refs_.size(), grantee_,
                    Status::FromErrno(err, "munmap").message());
    }
  }

  XenSharedPages(const XenSharedPages&) = delete;
  XenSharedPages& operator=(const XenSharedPages&) = delete;

  std::span<std::byte> data() override {
    return {static_cast<std::byte*>(addr_), refs_.size() * kPageSize};
  }
  std::span<const GrantRef> refs() const override { return refs_; }
  DomId grantee() const override { return grantee_; }

 private:
  const std::shared_ptr<xengntshr_handle> handle_;
  void* const addr_;
  const std::vector<GrantRef> refs_;
  const DomId grantee_;
};

std::string Describe(DomId grantee, size_t pages, bool writable,
                     const std::optional<platform::UnmapNotify>& notify) {
  std::string s = "(domain " + std::to_string(grantee) + ", " + std::to_string(pages) +
                  (pages == 1 ? " page, " : " pages, ") + (writable ? "writable" : "read-only");
  if (notify && notify->byte_offset) s += ", notify byte " + std::to_string(*notify->byte_offset);
  if (notify && notify->port) s += ", notify port " + std::to_string(*notify->port);
  return s + ")";
}

}  // namespace

XenGrantSharer::XenGrantSharer(std::shared_ptr<xengntdev_handle> handle)
    : handle_(std::move(handle)) {}

Result<std::unique_ptr<XenGrantSharer>> XenGrantSharer::Open() {
  xengntshr_handle* h = xengntshr_open(ToolLogger(), 0);
  if (h == nullptr) {
    const int err = errno;
    if (err == ENOENT || err == ENODEV || err == ENXIO) {
      return Status(Code::kUnavailable,
                    "xengntshr_open: /dev/xen/gntalloc absent: not running on Xen, or the "
                    "xen-gntalloc module is not loaded",
                    err);
    }
    return Status::FromErrno(err, "xengntshr_open /dev/xen/gntalloc");
  }
  std::shared_ptr<xengntshr_handle> handle(h, [](xengntshr_handle* p) { xengntshr_close(p); });
  // libxengntshr opens gntalloc without O_CLOEXEC; programs we exec must not
  // inherit it.
  const int fd = xengntshr_fd(h);
  const int flags = fcntl(fd, F_GETFD);
  if (flags < 0 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0) {
    return Status::FromErrno(errno, "fcntl FD_CLOEXEC on /dev/xen/gntalloc");
  }
  return std::unique_ptr<XenGrantSharer>(new XenGrantSharer(std::move(handle)));
}

Result<std::unique_ptr<platform::SharedPages>> XenGrantSharer::Share(
    DomId grantee, size_t pages, bool writable, std::optional<platform::UnmapNotify> notify) {
  if (notify && !notify->byte_offset && !notify->port) notify.reset();
  const std::string what = Describe(grantee, pages, writable, notify);
  if (grantee >= kDomIdFirstReserved) {
    return Status::InvalidArgument("share " + what + ": not an ordinary domain id");
  }
  if (pages == 0) return Status::InvalidArgument("share " + what + ": no pages");
  if (pages > kMaxPagesPerShare) {
    return Status::OutOfRange("share " + what + ": more than " + std::to_string(kMaxPagesPerShare) +
                              " pages in one call");
  }
  if (notify && pages != 1) {
    return Status::NotSupported("share " + what +
                                ": Xen supports unmap notify on single-page shares only");
  }
  if (notify && notify->byte_offset && *notify->byte_offset >= kPageSize) {
    return Status::OutOfRange("share " + what + ": notify byte outside the page");
  }

  // Allocated before the call so nothing can fail between a successful
  // share and the object that will unshare it.
  std::vector<GrantRef> refs(pages);
  void* addr = nullptr;
  const char* call = nullptr;
  if (notify) {
    call = "xengntshr_share_page_notify";
    addr = xengntshr_share_page_notify(handle_.get(), grantee, refs.data(), writable ? 1 : 0,
                                       notify->byte_offset.value_or(kNoNotifyOffset),
                                       notify->port.value_or(kNoNotifyPort));
  } else {
    call = "xengntshr_share_pages";
    addr = xengntshr_share_pages(handle_.get(), grantee, static_cast<int>(pages), refs.data(),
                                 writable ? 1 : 0);
  }
  if (addr == nullptr) {
    const int err = errno;
    Status s = Status::FromErrno(err, std::string(call) + what);
    if (err == ENOSPC) {
      const auto limit = ReadModuleParam("xen_gntalloc", "limit");
      std::string hint = "gntalloc page limit reached";
      if (limit) hint += " (limit " + std::to_string(*limit) + " pages)";
      hint +=
          " or grant table full; raise /sys/module/xen_gntalloc/parameters/limit or "
          "gnttab_max_frames";
      return Status(Code::kResourceExhausted, s.message() + ": " + hint, err);
    }
    if (err == EINVAL && notify && notify->port) {
      return Status(Code::kInvalidArgument,
                    s.message() + ": is the notify port bound by this process?", err);
    }
    return s;
  }
  return std::unique_ptr<platform::SharedPages>(
      new XenSharedPages(handle_, addr, std::move(refs), grantee));
}

}  // namespace vnvram::xen
