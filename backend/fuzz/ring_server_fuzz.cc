// libFuzzer entry point for RingServer::Process over a whole hostile ring.
// Input: byte 0 options (bit 0: group commit off), byte 1 budget - 1,
// bytes 2..5 req_prod (little-endian), then raw bytes laid over the ring's
// entries (one page: 32 entries of 64 bytes); shorter inputs are zero-padded.
// The region and the copy-mode pages sit between guard pages, so an overrun
// faults; afterwards the sink, the mapper and the response count are
// checked, and the ring must be fenced exactly when req_prod runs more than
// the ring size ahead. Any violation aborts. Single-threaded.
#include <spdlog/spdlog.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "backend/ring_server.h"
#include "backend/ring_test_support.h"
#include "common/endian.h"

namespace {

using vnvram::backend::RingServer;
using vnvram::backend::RingServerOptions;
using vnvram::backend::testing::FakeSegmentMapper;
using vnvram::backend::testing::GuardedPages;
using vnvram::backend::testing::RecordingSink;

constexpr size_t kRegionPages = 4;
constexpr size_t kGrantedPages = 16;

[[noreturn]] void Violation(const char* what) {
  std::fprintf(stderr, "ring_server_fuzz: invariant violated: %s\n", what);
  std::abort();
}

void Check(bool cond, const char* what) {
  if (!cond) Violation(what);
}

struct World {
  World() : ring(1), region(kRegionPages), mapper(kGrantedPages) {
    spdlog::set_level(spdlog::level::off);  // rejected requests would flood stderr
    Check(ring.ok() && region.ok() && mapper.granted.ok(), "mmap");
  }
  GuardedPages ring;
  GuardedPages region;
  FakeSegmentMapper mapper;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World* world = new World();  // lives for the process, like a fuzzer's
  World& w = *world;

  std::array<std::byte, 6 + 32 * sizeof(vnvramif_sring_entry)> in{};
  std::memcpy(in.data(), data, size < in.size() ? size : in.size());
  const bool group_commit = (static_cast<uint8_t>(in[0]) & 1) == 0;
  const uint32_t budget = 1 + static_cast<uint8_t>(in[1]) % 64;
  const RING_IDX req_prod = vnvram::LoadLE<uint32_t>(in.data() + 2);

  auto* sring = reinterpret_cast<vnvramif_sring_t*>(w.ring.span().data());
  std::memset(w.ring.span().data(), 0, w.ring.span().size());
  SHARED_RING_INIT(sring);
  std::memcpy(&sring->ring[0], in.data() + 6, in.size() - 6);
  sring->req_prod = req_prod;

  RecordingSink sink(w.region.span().size());
  w.mapper.max_refs_seen = 0;
  RingServerOptions options;
  options.group_commit = group_commit;
  options.max_requests_per_call = budget;
  auto server = RingServer::Create(w.ring.span(), w.region.span(), sink, &w.mapper, nullptr,
                                   std::move(options));
  Check(server.ok(), "create");
  const uint32_t ring_size = (*server)->ring_size();

  bool fenced = false;
  for (int call = 0; call < 64; ++call) {
    auto p = (*server)->Process();
    if (!p.ok()) {
      fenced = true;
      break;
    }
    if (*p == RingServer::Progress::kIdle) break;
  }
  Check(fenced == (req_prod > ring_size), "fenced exactly when req_prod overflows");
  Check(fenced == (*server)->fenced(), "fenced() agrees");
  Check(sink.out_of_bounds == 0, "sink saw a range outside the region");
  Check(w.mapper.max_refs_seen <= VNVRAMIF_MAX_SEGMENTS, "too many segments mapped");
  Check(w.mapper.live_mappings.load() == 0, "a mapping was left behind");
  const auto stats = (*server)->Stats();
  Check(stats.responses == stats.total_requests(), "one response per request");
  if (!fenced) {
    Check(stats.total_requests() == req_prod, "every produced request served");
    Check(sring->rsp_prod == req_prod, "every response pushed");
  } else {
    Check(stats.total_requests() == 0, "a fenced ring was served");
    Check(sring->rsp_prod == 0, "a fenced ring got responses");
  }
  return 0;
}
