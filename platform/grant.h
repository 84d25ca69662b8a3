// Grant sharing and grant mapping: the platform seam for memory one domain
// lets another map. On Xen, sharing goes through libxengntshr (gntalloc:
// only memory the share call allocates can be granted) and mapping through
// libxengnttab (gntdev); on the sim, pages of shared-memory files with a
// grant table that records grantee and access. Handle objects are
// thread-safe; SharedPages and GrantMapping are owned by one thread at a
// time and release their resources in the destructor (RAII).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "common/parse.h"
#include "common/result.h"

namespace vnvram::platform {

using GrantRef = uint32_t;
using EvtchnPort = uint32_t;
inline constexpr size_t kPageSize = 4096;

// What the kernel does when a mapping goes away (the process unmaps or
// dies): clear the byte at `byte_offset` inside the pages and/or notify
// `port`. Xen supports it on single-page shares and maps only.
struct UnmapNotify {
  std::optional<uint32_t> byte_offset;
  std::optional<EvtchnPort> port;
};

// Pages this domain allocated and granted to one other domain. The
// destructor ends foreign access and frees the pages (on Xen the kernel
// keeps a page that is still mapped until the mapper lets go).
class SharedPages {
 public:
  virtual ~SharedPages() = default;
  virtual std::span<std::byte> data() = 0;
  // One grant reference per page, in page order.
  virtual std::span<const GrantRef> refs() const = 0;
  virtual DomId grantee() const = 0;
};

class GrantSharer {
 public:
  virtual ~GrantSharer() = default;
  // Allocates `pages` zeroed pages and grants them to `grantee`, read-only
  // unless `writable`. kResourceExhausted when the platform's limit (gntalloc
  // `limit`, grant frames) is reached.
  virtual Result<std::unique_ptr<SharedPages>> Share(DomId grantee, size_t pages, bool writable,
                                                     std::optional<UnmapNotify> notify = {}) = 0;
};

// A mapping of another domain's granted pages, contiguous in our address
// space. The destructor unmaps.
class GrantMapping {
 public:
  virtual ~GrantMapping() = default;
  virtual std::span<std::byte> data() = 0;
  virtual DomId granter() const = 0;
};

class GrantMapper {
 public:
  virtual ~GrantMapper() = default;
  // Maps `refs` granted by `granter` to this domain. Any refusal is an
  // error and nothing stays mapped: kPermissionDenied when a ref was not
  // granted to us (or is read-only and `writable` was asked); a ref that is
  // not in use gives kNotFound on the sim but kPermissionDenied on Xen,
  // which cannot tell the two apart, so callers must not branch on it.
  virtual Result<std::unique_ptr<GrantMapping>> Map(DomId granter, std::span<const GrantRef> refs,
                                                    bool writable,
                                                    std::optional<UnmapNotify> notify = {}) = 0;
};

}  // namespace vnvram::platform
