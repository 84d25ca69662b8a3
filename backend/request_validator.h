// RequestValidator: the one gate between a request a guest wrote and the
// backend acting on it. Takes a PRIVATE COPY of a vnvramif_request (never a
// pointer into the shared ring) and the region size, and returns either a
// ValidatedRequest whose every offset and length is inside the region, or
// the VNVRAMIF_RSP_* status to answer with and a one-line reason.
// Pure functions, no allocation, no I/O; thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>

#include "vnvram/vnvramif.h"

namespace vnvram::backend {

// The known operations (VNVRAMIF_OP_*).
enum class Op : uint8_t {
  kPersist = VNVRAMIF_OP_PERSIST,
  kFlush = VNVRAMIF_OP_FLUSH,
  kBarrier = VNVRAMIF_OP_BARRIER,
  kWrite = VNVRAMIF_OP_WRITE,
  kRead = VNVRAMIF_OP_READ,
  kGetInfo = VNVRAMIF_OP_GET_INFO,
};
inline constexpr size_t kOpCount = VNVRAMIF_OP_COUNT;

// "persist", "flush", ...; "unknown" for anything else.
const char* OpName(uint8_t operation);

// A request that passed every check. Invariants (what the executor may rely
// on without checking again):
//   - PERSIST: offset <= region_size and length <= region_size - offset
//     (length 0 is allowed: an empty range, see below).
//   - WRITE/READ: the same range invariant with length > 0; 1 <= nr_segments
//     <= VNVRAMIF_MAX_SEGMENTS; page_offset < VNVRAMIF_PAGE_SIZE;
//     page_offset + length <= nr_segments * VNVRAMIF_PAGE_SIZE and the last
//     segment holds at least one data byte (no idle pages to map).
//   - FLUSH/BARRIER/GET_INFO: offset = length = 0, nr_segments = 0.
//   - grefs[i] for i >= nr_segments are 0.
struct ValidatedRequest {
  uint64_t id = 0;
  Op op = Op::kPersist;
  uint64_t offset = 0;
  uint64_t length = 0;
  uint16_t page_offset = 0;
  uint8_t nr_segments = 0;
  std::array<grant_ref_t, VNVRAMIF_MAX_SEGMENTS> grefs{};

  std::span<const grant_ref_t> segments() const { return {grefs.data(), nr_segments}; }
  bool is_copy() const { return op == Op::kWrite || op == Op::kRead; }
};

// Why a request was refused: the response status and a static one-line
// reason for the log (never freed, never formatted: no allocation per bad
// request).
struct RequestError {
  int16_t status = VNVRAMIF_RSP_EINVAL;  // VNVRAMIF_RSP_EOPNOTSUPP/EINVAL/ERANGE
  const char* reason = "";
};

class Validation {
 public:
  static Validation Accept(const ValidatedRequest& r) { return Validation(r); }
  static Validation Reject(int16_t status, const char* reason) {
    return Validation(RequestError{status, reason});
  }
  bool ok() const { return request_.has_value(); }
  const ValidatedRequest& request() const { return *request_; }
  // Meaningful only when !ok().
  const RequestError& error() const { return error_; }

 private:
  explicit Validation(const ValidatedRequest& r) : request_(r) {}
  explicit Validation(const RequestError& e) : error_(e) {}
  std::optional<ValidatedRequest> request_;
  RequestError error_;
};

// Checks `req` against a region of `region_size` bytes. Rules, in order
// (the first that fails decides the status):
//   1. operation is a known VNVRAMIF_OP_*               else EOPNOTSUPP
//   2. flags == 0                                        else EINVAL
//   3. non-copy ops: nr_segments == 0, page_offset == 0  else EINVAL
//      copy ops: 1 <= nr_segments <= MAX_SEGMENTS,
//      page_offset < 4096, length > 0,
//      page_offset + length <= nr_segments * 4096,
//      last segment not idle                             else EINVAL
//   4. PERSIST/WRITE/READ: offset <= region_size and
//      length <= region_size - offset (no wrap)          else ERANGE
// FLUSH, BARRIER and GET_INFO carry no range: their offset and length are
// ignored (vnvramif.h says so for FLUSH), never used, and reported as 0.
// PERSIST with length 0 is accepted (offset still bounded): it names an
// empty range, which is trivially durable; the server answers it with the
// current durable sequence without calling the persist sink.
Validation ValidateRequest(const vnvramif_request& req, uint64_t region_size);

}  // namespace vnvram::backend
