#include "backend/request_validator.h"

namespace vnvram::backend {

const char* OpName(uint8_t operation) {
  switch (operation) {
    case VNVRAMIF_OP_PERSIST: return "persist";
    case VNVRAMIF_OP_FLUSH: return "flush";
    case VNVRAMIF_OP_BARRIER: return "barrier";
    case VNVRAMIF_OP_WRITE: return "write";
    case VNVRAMIF_OP_READ: return "read";
    case VNVRAMIF_OP_GET_INFO: return "get-info";
    default: return "unknown";
  }
}

Validation ValidateRequest(const vnvramif_request& req, uint64_t region_size) {
  static_assert(VNVRAMIF_OP_COUNT == 6, "a new operation needs a validation rule");
  if (req.operation >= VNVRAMIF_OP_COUNT) {
    return Validation::Reject(VNVRAMIF_RSP_EOPNOTSUPP, "unknown operation");
  }
  const Op op = static_cast<Op>(req.operation);
  if (req.flags != 0) return Validation::Reject(VNVRAMIF_RSP_EINVAL, "flags must be 0");

  ValidatedRequest out;
  out.id = req.id;
  out.op = op;

  const bool is_copy = op == Op::kWrite || op == Op::kRead;
  const bool has_range = is_copy || op == Op::kPersist;

  if (!is_copy) {
    if (req.nr_segments != 0) {
      return Validation::Reject(VNVRAMIF_RSP_EINVAL, "nr_segments must be 0 for this operation");
    }
    if (req.page_offset != 0) {
      return Validation::Reject(VNVRAMIF_RSP_EINVAL, "page_offset must be 0 for this operation");
    }
  } else {
    if (req.nr_segments == 0) {
      return Validation::Reject(VNVRAMIF_RSP_EINVAL, "copy request without segments");
    }
    if (req.nr_segments > VNVRAMIF_MAX_SEGMENTS) {
      return Validation::Reject(VNVRAMIF_RSP_EINVAL, "nr_segments above VNVRAMIF_MAX_SEGMENTS");
    }
    if (req.page_offset >= VNVRAMIF_PAGE_SIZE) {
      return Validation::Reject(VNVRAMIF_RSP_EINVAL, "page_offset not inside the first page");
    }
    if (req.length == 0) return Validation::Reject(VNVRAMIF_RSP_EINVAL, "copy request of 0 bytes");
    // Both operands are small (<= 8 * 4096), so none of this can wrap.
    const uint64_t capacity =
        uint64_t{req.nr_segments} * VNVRAMIF_PAGE_SIZE - uint64_t{req.page_offset};
    if (req.length > capacity) {
      return Validation::Reject(VNVRAMIF_RSP_EINVAL, "copy length exceeds the granted segments");
    }
    if (req.nr_segments > 1) {
      // Bytes that fit before the last segment; > 0 because page_offset < 4096.
      const uint64_t before_last =
          uint64_t{req.nr_segments - 1u} * VNVRAMIF_PAGE_SIZE - uint64_t{req.page_offset};
      if (req.length <= before_last) {
        return Validation::Reject(VNVRAMIF_RSP_EINVAL, "copy request names idle trailing segments");
      }
    }
    out.nr_segments = req.nr_segments;
    out.page_offset = req.page_offset;
    for (size_t i = 0; i < req.nr_segments; ++i) out.grefs[i] = req.gref[i];
  }

  if (has_range) {
    if (req.offset > region_size) {
      return Validation::Reject(VNVRAMIF_RSP_ERANGE, "offset beyond the end of the region");
    }
    if (req.length > region_size - req.offset) {
      return Validation::Reject(VNVRAMIF_RSP_ERANGE,
                                "offset + length beyond the end of the region");
    }
    out.offset = req.offset;
    out.length = req.length;
  }
  return Validation::Accept(out);
}

}  // namespace vnvram::backend
