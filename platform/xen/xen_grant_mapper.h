// XenGrantMapper: platform::GrantMapper on libxengnttab (/dev/xen/gntdev).
// Owns one gntdev handle, shared with every GrantMapping it hands out so a
// mapping stays valid if it outlives the mapper. Map() may be called from
// any thread; each GrantMapping belongs to one thread at a time. Not for
// use in a forked child (libxengnttab's rule): open a new one there.
//
// Xen facts callers depend on:
//  - Xen does not say why it refused a map (gntdev turns every refusal into
//    EINVAL). Map() tells the cases apart by probing: a writable map of a
//    read-only grant gives kPermissionDenied naming it; any other refusal
//    (not granted to this domain, not in use, revoked, bad ref) is also
//    kPermissionDenied, never kNotFound as on the sim;
//  - more refs than gntdev's per-request `limit` gives kResourceExhausted;
//  - unmap notify works on single-page maps only (kNotSupported otherwise);
//    the clear-byte half needs a writable map (kInvalidArgument otherwise);
//    the port must be bound through an EventChannels handle of this process.
//    The kernel clears the byte / signals the port when the mapping is
//    destroyed or the process dies.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "common/result.h"
#include "platform/grant.h"

struct xengntdev_handle;

namespace vnvram::xen {

class XenGrantMapper final : public platform::GrantMapper {
 public:
  // kUnavailable when /dev/xen/gntdev is absent. `max_grants` > 0 calls
  // xengnttab_set_max_grants (a no-op on pvops kernels, whose limit is the
  // xen_gntdev `limit` module parameter).
  static Result<std::unique_ptr<XenGrantMapper>> Open(uint32_t max_grants = 0);

  Result<std::unique_ptr<platform::GrantMapping>> Map(
      DomId granter, std::span<const platform::GrantRef> refs, bool writable,
      std::optional<platform::UnmapNotify> notify = {}) override;

  // A sanity bound on one Map() call (4 GiB).
  static constexpr size_t kMaxRefsPerMap = size_t{1} << 20;

 private:
  explicit XenGrantMapper(std::shared_ptr<xengntdev_handle> handle);

  // Maps without notify; nullptr and *err set on failure.
  void* RawMap(DomId granter, std::span<const platform::GrantRef> refs, int prot, int* err);
  // The error for a refused map, probing as the header comment says.
  Status DiagnoseMapFailure(int err, const std::string& what, DomId granter,
                            std::span<const platform::GrantRef> refs, bool writable,
                            bool with_notify);

  const std::shared_ptr<xengntdev_handle> handle_;
};

}  // namespace vnvram::xen
