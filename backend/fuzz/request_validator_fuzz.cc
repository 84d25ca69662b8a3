// libFuzzer entry point for ValidateRequest, the gate every guest request
// passes. Input: 8 bytes little-endian region size, then the 64-byte
// vnvramif_request as a guest would lay it out (little-endian fields);
// shorter inputs are zero-padded. Checks the validator against an
// independent oracle written with 128-bit arithmetic (so it cannot wrap)
// and the invariants ValidatedRequest promises; any disagreement aborts.
// Built with -fsanitize=fuzzer when VNVRAM_FUZZ=ON; otherwise
// fuzz_replay_test.cc replays the seed corpus through it. Pure; thread-safe.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "backend/request_validator.h"
#include "common/endian.h"

namespace {

using vnvram::LoadLE;
using vnvram::backend::Op;
using vnvram::backend::ValidateRequest;
using vnvram::backend::Validation;
using u128 = unsigned __int128;

[[noreturn]] void Violation(const char* what) {
  std::fprintf(stderr, "request_validator_fuzz: invariant violated: %s\n", what);
  std::abort();
}

void Check(bool cond, const char* what) {
  if (!cond) Violation(what);
}

vnvramif_request Decode(const std::byte* p) {
  vnvramif_request r{};
  r.id = LoadLE<uint64_t>(p + 0);
  r.operation = static_cast<uint8_t>(p[8]);
  r.nr_segments = static_cast<uint8_t>(p[9]);
  r.page_offset = LoadLE<uint16_t>(p + 10);
  r.flags = LoadLE<uint32_t>(p + 12);
  r.offset = LoadLE<uint64_t>(p + 16);
  r.length = LoadLE<uint64_t>(p + 24);
  for (size_t i = 0; i < VNVRAMIF_MAX_SEGMENTS; ++i) r.gref[i] = LoadLE<uint32_t>(p + 32 + 4 * i);
  return r;
}

// The rules of request_validator.h restated independently: the status the
// request must get, or 0 when it must be accepted.
int Oracle(const vnvramif_request& r, uint64_t region) {
  if (r.operation >= VNVRAMIF_OP_COUNT) return VNVRAMIF_RSP_EOPNOTSUPP;
  if (r.flags) return VNVRAMIF_RSP_EINVAL;
  const bool copy = r.operation == VNVRAMIF_OP_WRITE || r.operation == VNVRAMIF_OP_READ;
  if (!copy) {
    if (r.nr_segments || r.page_offset) return VNVRAMIF_RSP_EINVAL;
  } else {
    if (r.nr_segments < 1 || r.nr_segments > VNVRAMIF_MAX_SEGMENTS) return VNVRAMIF_RSP_EINVAL;
    if (r.page_offset >= 4096) return VNVRAMIF_RSP_EINVAL;
    const u128 end = u128{r.page_offset} + r.length;  // one past the last data byte
    if (r.length == 0 || end > u128{r.nr_segments} * 4096) return VNVRAMIF_RSP_EINVAL;
    if (end <= u128{r.nr_segments - 1u} * 4096) return VNVRAMIF_RSP_EINVAL;
  }
  const bool ranged = copy || r.operation == VNVRAMIF_OP_PERSIST;
  if (ranged && u128{r.offset} + r.length > region) return VNVRAMIF_RSP_ERANGE;
  return 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::array<std::byte, 8 + sizeof(vnvramif_request)> buf{};
  std::memcpy(buf.data(), data, size < buf.size() ? size : buf.size());
  const uint64_t region = LoadLE<uint64_t>(buf.data());
  const vnvramif_request req = Decode(buf.data() + 8);

  const Validation v = ValidateRequest(req, region);
  const int expected = Oracle(req, region);
  if (!v.ok()) {
    Check(expected != 0, "a valid request was rejected");
    Check(v.error().status == expected, "rejected with the wrong status");
    Check(v.error().reason != nullptr && v.error().reason[0] != '\0', "rejection without reason");
    return 0;
  }
  Check(expected == 0, "an invalid request was accepted");
  const auto& r = v.request();
  Check(r.id == req.id, "id not carried");
  Check(static_cast<uint8_t>(r.op) == req.operation, "operation not carried");
  Check(r.offset <= region && r.length <= region - r.offset, "range outside the region");
  if (r.is_copy()) {
    Check(r.nr_segments >= 1 && r.nr_segments <= VNVRAMIF_MAX_SEGMENTS, "segment count");
    Check(r.page_offset < 4096, "page offset");
    Check(r.length > 0 && r.page_offset + r.length <= uint64_t{r.nr_segments} * 4096,
          "copy length");
    Check(r.segments().size() == r.nr_segments, "segment span");
  } else {
    Check(r.nr_segments == 0 && r.page_offset == 0, "segments on a non-copy op");
    if (r.op != Op::kPersist) Check(r.offset == 0 && r.length == 0, "range on a rangeless op");
  }
  for (size_t i = r.nr_segments; i < VNVRAMIF_MAX_SEGMENTS; ++i) {
    Check(r.grefs[i] == 0, "unused gref not cleared");
  }
  return 0;
}
