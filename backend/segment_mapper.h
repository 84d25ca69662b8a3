// SegmentMapper: maps the data pages a frontend granted for one copy-mode
// request (WRITE/READ), contiguously, for the time of one memcpy. The ring
// server sees only this interface; GrantSegmentMapper binds it to the
// platform's GrantMapper and the frontend's domain id, tests bind it to
// plain memory. A mapper is used by one ring worker thread at a time.
#pragma once

#include <memory>
#include <span>

#include "common/parse.h"
#include "common/result.h"
#include "platform/grant.h"

namespace vnvram::backend {

class SegmentMapper {
 public:
  virtual ~SegmentMapper() = default;
  // Maps `refs` (1..VNVRAMIF_MAX_SEGMENTS grant refs the frontend wrote;
  // untrusted values) in page order; writable when the backend will store
  // into them (READ). The mapping's data() must be refs.size() pages long;
  // the ring server checks and refuses a shorter one. Errors: whatever the
  // platform reports for a ref not granted to us (kPermissionDenied,
  // kNotFound, kInvalidArgument); the server answers VNVRAMIF_RSP_EACCES.
  virtual Result<std::unique_ptr<platform::GrantMapping>> Map(
      std::span<const platform::GrantRef> refs, bool writable) = 0;
};

// Maps through the platform seam, from one frontend domain only: a ref
// another domain granted is never reachable through this mapper.
class GrantSegmentMapper final : public SegmentMapper {
 public:
  GrantSegmentMapper(platform::GrantMapper& mapper, DomId frontend)
      : mapper_(mapper), frontend_(frontend) {}
  Result<std::unique_ptr<platform::GrantMapping>> Map(std::span<const platform::GrantRef> refs,
                                                      bool writable) override {
    return mapper_.Map(frontend_, refs, writable);
  }

 private:
  platform::GrantMapper& mapper_;
  const DomId frontend_;
};

}  // namespace vnvram::backend
