// XenGrantSharer: platform::GrantSharer on libxengntshr (/dev/xen/gntalloc).
// Owns one gntalloc handle, shared with every SharedPages it hands out so
// the pages stay valid if they outlive the sharer. Share() may be called
// from any thread; each SharedPages belongs to one thread at a time. Not for
// use in a forked child (libxengnttab's rule): open a new one there.
//
// Xen facts callers depend on:
//  - only pages this call allocates can be granted (gntalloc allocates them
//    zeroed); at most `limit` pages per domain (module parameter of
//    xen-gntalloc, default 1024 = 4 MiB) -> kResourceExhausted;
//  - unmap notify is available on single-page shares only (kNotSupported
//    otherwise): when the SharedPages is destroyed or the process dies, the
//    kernel clears the byte and/or signals the port (a port bound through
//    an EventChannels handle of this process);
//  - destroying a SharedPages ends foreign access; a page the grantee still
//    maps is freed by the kernel once the grantee unmaps.
#pragma once

#include <memory>
#include <optional>

#include "common/result.h"
#include "platform/grant.h"

struct xengntdev_handle;

namespace vnvram::xen {

class XenGrantSharer final : public platform::GrantSharer {
 public:
  // kUnavailable when /dev/xen/gntalloc is absent (xen-gntalloc not loaded,
  // or not on Xen), kPermissionDenied when it cannot be opened.
  static Result<std::unique_ptr<XenGrantSharer>> Open();

  Result<std::unique_ptr<platform::SharedPages>> Share(
      DomId grantee, size_t pages, bool writable,
      std::optional<platform::UnmapNotify> notify = {}) override;

  // A sanity bound on one Share() call (4 GiB); gntalloc's `limit` is the
  // real one and usually far lower.
  static constexpr size_t kMaxPagesPerShare = size_t{1} << 20;

 private:
  explicit XenGrantSharer(std::shared_ptr<xengntdev_handle> handle);

  const std::shared_ptr<xengntdev_handle> handle_;
};

}  // namespace vnvram::xen
