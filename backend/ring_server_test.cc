#define BOOST_TEST_MODULE backend_ring_server
#include "backend/ring_server.h"

#include <atomic>
#include <boost/test/unit_test.hpp>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "backend/ring_test_support.h"
#include "frontend/ring_client.h"

namespace vnvram::backend {
namespace {

using frontend::Completion;
using frontend::RingClient;
using testing::FakeSegmentMapper;
using testing::GuardedPages;
using testing::RecordingSink;

constexpr size_t kRegionPages = 16;
constexpr uint64_t kRegionSize = kRegionPages * VNVRAMIF_PAGE_SIZE;
constexpr size_t kGrantedPages = 32;

vnvramif_request Req(uint8_t op, uint64_t offset = 0, uint64_t length = 0) {
  vnvramif_request r{};
  r.operation = op;
  r.offset = offset;
  r.length = length;
  return r;
}

// Copy-mode request over granted pages first_ref, first_ref + 1, ...
vnvramif_request CopyReq(uint8_t op, uint64_t offset, uint64_t length, uint8_t segs,
                         uint32_t first_ref, uint16_t page_offset = 0) {
  vnvramif_request r = Req(op, offset, length);
  r.nr_segments = segs;
  r.page_offset = page_offset;
  for (uint8_t i = 0; i < segs && i < VNVRAMIF_MAX_SEGMENTS; ++i) r.gref[i] = first_ref + i;
  return r;
}

// Frontend and backend of one device on the same plain memory: the ring and
// the region sit between inaccessible guard pages, so any out-of-bounds
// access by the server faults.
struct Device {
  explicit Device(RingServerOptions options = {}, size_t ring_pages = 1, bool with_mapper = true)
      : ring(ring_pages), region(kRegionPages), mapper(kGrantedPages), sink(kRegionSize) {
    BOOST_TEST_REQUIRE(ring.ok());
    BOOST_TEST_REQUIRE(region.ok());
    BOOST_TEST_REQUIRE(mapper.granted.ok());
    auto c = RingClient::Create(ring.span(), [this] { ++frontend_kicks; });
    BOOST_TEST_REQUIRE(c.ok(), c.status().ToString());
    client = std::move(c).value();
    auto s = RingServer::Create(
        ring.span(), region.span(), sink, with_mapper ? &mapper : nullptr,
        [this] { ++backend_kicks; }, std::move(options));
    BOOST_TEST_REQUIRE(s.ok(), s.status().ToString());
    server = std::move(s).value();
    sring = reinterpret_cast<vnvramif_sring_t*>(ring.span().data());
  }

  // Runs the server inline as the client's "wait for an event".
  Status Serve() {
    auto p = server->Process();
    return p.ok() ? Status::Ok() : p.status();
  }
  Completion Call(const vnvramif_request& r) {
    auto c = client->Call(r, [this] { return Serve(); });
    BOOST_TEST_REQUIRE(c.ok(), c.status().ToString());
    return *c;
  }
  std::vector<Completion> SubmitAllAndServe(const std::vector<vnvramif_request>& reqs) {
    for (const auto& r : reqs) BOOST_TEST_REQUIRE(client->Submit(r).ok());
    BOOST_TEST_REQUIRE(client->Kick().ok());
    BOOST_TEST_REQUIRE(Serve().ok());
    auto polled = client->Poll();
    BOOST_TEST_REQUIRE(polled.ok(), polled.status().ToString());
    return *polled;
  }

  GuardedPages ring;
  GuardedPages region;
  FakeSegmentMapper mapper;
  RecordingSink sink;
  std::unique_ptr<RingClient> client;
  std::unique_ptr<RingServer> server;
  vnvramif_sring_t* sring = nullptr;
  int frontend_kicks = 0;
  int backend_kicks = 0;
};

BOOST_AUTO_TEST_SUITE(RingServerTest)

// --- construction ----------------------------------------------------------

BOOST_AUTO_TEST_CASE(CreateRejectsRingsAndRegionsOfTheWrongShape) {
  GuardedPages ring(32), region(1);
  LocalPersistSink sink;
  auto bad = [&](std::span<std::byte> r, std::span<std::byte> g) {
    return !RingServer::Create(r, g, sink, nullptr, nullptr).ok();
  };
  BOOST_TEST(bad(ring.span().first(4095), region.span()));
  BOOST_TEST(bad(ring.span().first(3 * 4096), region.span()));
  BOOST_TEST(bad(ring.span().first(32 * 4096), region.span()));
  BOOST_TEST(bad(ring.span().subspan(1, 4096), region.span()));
  BOOST_TEST(bad(ring.span().first(4096), region.span().first(0)));
  RingServerOptions zero_budget;
  zero_budget.max_requests_per_call = 0;
  BOOST_TEST(!RingServer::Create(ring.span().first(4096), region.span(), sink, nullptr, nullptr,
                                 zero_budget)
                  .ok());
  BOOST_TEST(
      RingServer::Create(ring.span().first(16 * 4096), region.span(), sink, nullptr, nullptr).ok());
}

// --- every operation round-trips ---------------------------------------------

BOOST_AUTO_TEST_CASE(GetInfoReportsTheRegionSizeAndDurableSeq) {
  Device d;
  d.sink.seq = 41;
  const Completion c = d.Call(Req(VNVRAMIF_OP_GET_INFO));
  BOOST_TEST(c.status == VNVRAMIF_RSP_OKAY);
  BOOST_TEST(c.value == kRegionSize);
  BOOST_TEST(c.durable_seq == 41u);
}

BOOST_AUTO_TEST_CASE(PersistReturnsAStrictlyIncreasingDurableSeq) {
  Device d;
  uint64_t last = 0;
  for (int i = 0; i < 10; ++i) {
    const Completion c = d.Call(Req(VNVRAMIF_OP_PERSIST, i * 100, 100));
    BOOST_TEST(c.status == VNVRAMIF_RSP_OKAY);
    BOOST_TEST(c.durable_seq > last);
    last = c.durable_seq;
    BOOST_TEST_REQUIRE(d.sink.last_batch.size() == 1u);
    BOOST_TEST(d.sink.last_batch[0].offset == uint64_t(i * 100));
    BOOST_TEST(d.sink.last_batch[0].length == 100u);
  }
  BOOST_TEST(d.sink.calls == 10u);
}

BOOST_AUTO_TEST_CASE(PersistWithTheLocalSinkAdvancesItsSequence) {
  GuardedPages ring(1), region(1);
  LocalPersistSink sink;
  auto client = RingClient::Create(ring.span(), nullptr);
  auto server = RingServer::Create(ring.span(), region.span(), sink, nullptr, nullptr);
  BOOST_TEST_REQUIRE(client.ok());
  BOOST_TEST_REQUIRE(server.ok());
  auto wait = [&] { return (*server)->Process().ok() ? Status::Ok() : Status::Internal("x"); };
  auto a = (*client)->Call(Req(VNVRAMIF_OP_PERSIST, 0, 10), wait);
  auto b = (*client)->Call(Req(VNVRAMIF_OP_FLUSH), wait);
  BOOST_TEST_REQUIRE(a.ok());
  BOOST_TEST_REQUIRE(b.ok());
  BOOST_TEST(a->durable_seq == 1u);
  BOOST_TEST(b->durable_seq == 2u);
  BOOST_TEST(sink.DurableSeq() == 2u);
}

BOOST_AUTO_TEST_CASE(EmptyPersistIsAnsweredWithoutCallingTheSink) {
  Device d;
  d.sink.seq = 7;
  const Completion c = d.Call(Req(VNVRAMIF_OP_PERSIST, kRegionSize, 0));
  BOOST_TEST(c.status == VNVRAMIF_RSP_OKAY);
  BOOST_TEST(c.durable_seq == 7u);
  BOOST_TEST(d.sink.calls == 0u);
}

BOOST_AUTO_TEST_CASE(FlushPersistsTheWholeRegion) {
  Device d;
  const Completion c = d.Call(Req(VNVRAMIF_OP_FLUSH, 12345, 999));  // range ignored
  BOOST_TEST(c.status == VNVRAMIF_RSP_OKAY);
  BOOST_TEST_REQUIRE(d.sink.last_batch.size() == 1u);
  BOOST_TEST(d.sink.last_batch[0].offset == 0u);
  BOOST_TEST(d.sink.last_batch[0].length == kRegionSize);
}

BOOST_AUTO_TEST_CASE(BarrierCompletes) {
  Device d;
  const Completion c = d.Call(Req(VNVRAMIF_OP_BARRIER));
  BOOST_TEST(c.status == VNVRAMIF_RSP_OKAY);
  BOOST_TEST(c.operation == VNVRAMIF_OP_BARRIER);
}

BOOST_AUTO_TEST_CASE(WriteThenReadRoundTripThroughGrantedPages) {
  Device d;
  // WRITE 6000 bytes from granted pages 1-2 starting 100 bytes into page 1.
  for (size_t i = 0; i < 6000; ++i) {
    d.mapper.granted.page(0)[100 + i] = std::byte(static_cast<uint8_t>(i * 7 + 3));
  }
  const Completion w = d.Call(CopyReq(VNVRAMIF_OP_WRITE, 5000, 6000, 2, 1, 100));
  BOOST_TEST(w.status == VNVRAMIF_RSP_OKAY);
  BOOST_TEST(w.value == 6000u);
  BOOST_TEST(w.durable_seq >= 1u);
  BOOST_TEST(std::memcmp(d.region.span().data() + 5000, d.mapper.granted.page(0) + 100, 6000) == 0);
  BOOST_TEST((d.region.span()[4999] == std::byte{0}));
  BOOST_TEST((d.region.span()[11000] == std::byte{0}));
  BOOST_TEST_REQUIRE(d.sink.last_batch.size() == 1u);
  BOOST_TEST(d.sink.last_batch[0].offset == 5000u);
  BOOST_TEST(d.sink.last_batch[0].length == 6000u);

  // READ it back into pages 10-11 at page offset 7.
  const Completion r = d.Call(CopyReq(VNVRAMIF_OP_READ, 5000, 6000, 2, 10, 7));
  BOOST_TEST(r.status == VNVRAMIF_RSP_OKAY);
  BOOST_TEST(r.value == 6000u);
  BOOST_TEST(std::memcmp(d.mapper.granted.page(9) + 7, d.region.span().data() + 5000, 6000) == 0);
  BOOST_TEST((d.mapper.granted.page(9)[6] == std::byte{0}));
  BOOST_TEST(d.mapper.live_mappings.load() == 0);  // every mapping was undone
  const RingStats st = d.server->Stats();
  BOOST_TEST(st.bytes_written == 6000u);
  BOOST_TEST(st.bytes_read == 6000u);
}

BOOST_AUTO_TEST_CASE(CopyOfTheLastByteOfTheRegionAndFullSegmentsWork) {
  Device d;
  d.mapper.granted.page(0)[4095] = std::byte{0xAB};
  BOOST_TEST(d.Call(CopyReq(VNVRAMIF_OP_WRITE, kRegionSize - 1, 1, 1, 1, 4095)).status ==
             VNVRAMIF_RSP_OKAY);
  BOOST_TEST((d.region.span()[kRegionSize - 1] == std::byte{0xAB}));
  const Completion r =
      d.Call(CopyReq(VNVRAMIF_OP_READ, 0, 8 * VNVRAMIF_PAGE_SIZE, VNVRAMIF_MAX_SEGMENTS, 20));
  BOOST_TEST(r.status == VNVRAMIF_RSP_OKAY);
  BOOST_TEST(d.mapper.max_refs_seen == size_t{VNVRAMIF_MAX_SEGMENTS});
}

BOOST_AUTO_TEST_CASE(MultiPageRingServesMoreRequestsInFlight) {
  Device d({}, /*ring_pages=*/4);
  BOOST_TEST(d.server->ring_size() == static_cast<uint32_t>(VNVRAMIF_RING_SIZE(4)));
  BOOST_TEST(d.client->ring_size() == d.server->ring_size());
  std::vector<vnvramif_request> reqs(d.server->ring_size(), Req(VNVRAMIF_OP_PERSIST, 0, 1));
  size_t answered = 0;
  for (const auto& r : reqs) BOOST_TEST_REQUIRE(d.client->Submit(r).ok());
  BOOST_TEST_REQUIRE(d.client->Kick().ok());
  while (answered < reqs.size()) {
    BOOST_TEST_REQUIRE(d.Serve().ok());
    auto p = d.client->Poll();
    BOOST_TEST_REQUIRE(p.ok());
    answered += p->size();
  }
  BOOST_TEST(answered == reqs.size());
}

// --- bad requests: error response, server keeps serving ----------------------

struct BadCase {
  const char* name;
  vnvramif_request req;
  int16_t status;
};

BOOST_AUTO_TEST_CASE(EveryBadRequestGetsItsErrorAndTheServerKeepsServing) {
  vnvramif_request bad_flags = Req(VNVRAMIF_OP_PERSIST, 0, 1);
  bad_flags.flags = 1;
  vnvramif_request persist_with_segs = Req(VNVRAMIF_OP_PERSIST, 0, 1);
  persist_with_segs.nr_segments = 1;
  const BadCase cases[] = {
      {"offset beyond region", Req(VNVRAMIF_OP_PERSIST, kRegionSize + 1, 0), VNVRAMIF_RSP_ERANGE},
      {"length past end", Req(VNVRAMIF_OP_PERSIST, kRegionSize - 1, 2), VNVRAMIF_RSP_ERANGE},
      {"offset+length wraps", Req(VNVRAMIF_OP_PERSIST, 4096, ~uint64_t{0} - 4095),
       VNVRAMIF_RSP_ERANGE},
      {"copy wraps", CopyReq(VNVRAMIF_OP_WRITE, ~uint64_t{0} - 10, 100, 1, 1), VNVRAMIF_RSP_ERANGE},
      {"unknown op 6", Req(6), VNVRAMIF_RSP_EOPNOTSUPP},
      {"unknown op 255", Req(255), VNVRAMIF_RSP_EOPNOTSUPP},
      {"bad flags", bad_flags, VNVRAMIF_RSP_EINVAL},
      {"segments on persist", persist_with_segs, VNVRAMIF_RSP_EINVAL},
      {"copy without segments", CopyReq(VNVRAMIF_OP_WRITE, 0, 10, 0, 1), VNVRAMIF_RSP_EINVAL},
      {"nine segments", CopyReq(VNVRAMIF_OP_READ, 0, 10, 9, 1), VNVRAMIF_RSP_EINVAL},
      {"page_offset 4096", CopyReq(VNVRAMIF_OP_WRITE, 0, 1, 2, 1, 4096), VNVRAMIF_RSP_EINVAL},
      {"copy length too big", CopyReq(VNVRAMIF_OP_WRITE, 0, 4097, 1, 1), VNVRAMIF_RSP_EINVAL},
      {"copy of 0 bytes", CopyReq(VNVRAMIF_OP_READ, 0, 0, 1, 1), VNVRAMIF_RSP_EINVAL},
      {"ungranted ref", CopyReq(VNVRAMIF_OP_WRITE, 0, 10, 1, 999), VNVRAMIF_RSP_EACCES},
      {"ungranted second ref", CopyReq(VNVRAMIF_OP_READ, 0, 5000, 2, kGrantedPages),
       VNVRAMIF_RSP_EACCES},
  };
  Device d;
  std::memset(d.mapper.granted.span().data(), 0x5A, d.mapper.granted.span().size());
  for (const BadCase& bc : cases) {
    BOOST_TEST_CONTEXT(bc.name) {
      const Completion c = d.Call(bc.req);
      BOOST_TEST(c.status == bc.status);
      BOOST_TEST(c.operation == bc.req.operation);
      BOOST_TEST(c.value == 0u);
      // ...and the next good request still works.
      BOOST_TEST(d.Call(Req(VNVRAMIF_OP_PERSIST, 0, 1)).status == VNVRAMIF_RSP_OKAY);
    }
  }
  // Nothing reached the region or the sink out of bounds.
  for (std::byte b : d.region.span()) BOOST_TEST_REQUIRE((b == std::byte{0}));
  BOOST_TEST(d.sink.out_of_bounds == 0u);
  BOOST_TEST(!d.server->fenced());
  const RingStats st = d.server->Stats();
  BOOST_TEST(st.rejected == 13u);
  BOOST_TEST(st.unknown_op == 2u);
  BOOST_TEST(st.failed == 2u);  // the two EACCES
}

BOOST_AUTO_TEST_CASE(CopyModeWithoutAMapperIsEopnotsupp) {
  Device d({}, 1, /*with_mapper=*/false);
  BOOST_TEST(d.Call(CopyReq(VNVRAMIF_OP_READ, 0, 10, 1, 1)).status == VNVRAMIF_RSP_EOPNOTSUPP);
  BOOST_TEST(d.Call(Req(VNVRAMIF_OP_PERSIST, 0, 10)).status == VNVRAMIF_RSP_OKAY);
}

BOOST_AUTO_TEST_CASE(SinkFailureAnswersErrorAndLaterPersistsSucceed) {
  Device d;
  d.sink.fail = true;
  const Completion c = d.Call(Req(VNVRAMIF_OP_PERSIST, 0, 10));
  BOOST_TEST(c.status == VNVRAMIF_RSP_ERROR);
  d.sink.fail = false;
  BOOST_TEST(d.Call(Req(VNVRAMIF_OP_PERSIST, 0, 10)).status == VNVRAMIF_RSP_OKAY);
  BOOST_TEST(d.server->Stats().failed == 1u);
}

BOOST_AUTO_TEST_CASE(GrantSegmentMapperMapsFromTheFrontendDomainOnly) {
  struct RecordingGrantMapper final : platform::GrantMapper {
    Result<std::unique_ptr<platform::GrantMapping>> Map(
        DomId granter, std::span<const platform::GrantRef> refs, bool writable,
        std::optional<platform::UnmapNotify>) override {
      last_granter = granter;
      last_refs.assign(refs.begin(), refs.end());
      last_writable = writable;
      return Status::PermissionDenied("not granted to us");
    }
    DomId last_granter = 0;
    std::vector<platform::GrantRef> last_refs;
    bool last_writable = false;
  } platform_mapper;
  GrantSegmentMapper mapper(platform_mapper, 7);
  const platform::GrantRef refs[] = {11, 12};
  auto m = mapper.Map(refs, /*writable=*/true);
  BOOST_TEST((m.status().code() == Code::kPermissionDenied));
  BOOST_TEST(platform_mapper.last_granter == 7);
  BOOST_TEST(platform_mapper.last_refs == std::vector<platform::GrantRef>({11, 12}));
  BOOST_TEST(platform_mapper.last_writable);
}

// --- misbehaving rings -----------------------------------------------------

BOOST_AUTO_TEST_CASE(ReqProdFarBeyondTheRingFencesItForGood) {
  Device d;
  BOOST_TEST(d.Call(Req(VNVRAMIF_OP_PERSIST, 0, 1)).status == VNVRAMIF_RSP_OKAY);
  // A hostile frontend claims a billion requests.
  d.sring->req_prod += 1000000000u;
  auto p = d.server->Process();
  BOOST_TEST_REQUIRE(!p.ok());
  BOOST_TEST((p.status().code() == Code::kCorruption), p.status().ToString());
  BOOST_TEST(d.server->fenced());
  BOOST_TEST((d.server->fence_status().code() == Code::kCorruption));
  // Fenced means fenced: even a ring that now looks sane is left alone.
  d.sring->req_prod -= 1000000000u;
  const std::vector<std::byte> sane(d.ring.span().begin(), d.ring.span().end());
  BOOST_TEST(!d.server->Process().ok());
  BOOST_TEST(std::memcmp(sane.data(), d.ring.span().data(), sane.size()) == 0);
  BOOST_TEST(d.sink.calls == 1u);
}

BOOST_AUTO_TEST_CASE(ReqProdOneBeyondTheRingSizeFences) {
  Device d;
  d.sring->req_prod = d.server->ring_size() + 1;
  BOOST_TEST(!d.server->Process().ok());
  BOOST_TEST(d.server->fenced());
  BOOST_TEST(d.sring->rsp_prod == 0u);  // no response was written
}

BOOST_AUTO_TEST_CASE(ReqProdExactlyOneRingAheadIsServed) {
  // A full ring is legal: ring_size requests outstanding.
  Device d;
  for (uint32_t i = 0; i < d.server->ring_size(); ++i) {
    BOOST_TEST_REQUIRE(d.client->Submit(Req(VNVRAMIF_OP_BARRIER)).ok());
  }
  BOOST_TEST_REQUIRE(d.client->Kick().ok());
  BOOST_TEST(d.Serve().ok());
  auto p = d.client->Poll();
  BOOST_TEST_REQUIRE(p.ok());
  BOOST_TEST(p->size() == d.server->ring_size());
  BOOST_TEST(!d.server->fenced());
}

BOOST_AUTO_TEST_CASE(FencingOneDeviceLeavesAnotherServing) {
  Device bad, good;
  bad.sring->req_prod = 0x80000000u;
  BOOST_TEST(!bad.server->Process().ok());
  BOOST_TEST(bad.server->fenced());
  BOOST_TEST(good.Call(Req(VNVRAMIF_OP_PERSIST, 0, 1)).status == VNVRAMIF_RSP_OKAY);
  BOOST_TEST(!good.server->fenced());
}

BOOST_AUTO_TEST_CASE(AFloodIsServedAtMostTheBudgetPerCall) {
  RingServerOptions o;
  o.max_requests_per_call = 4;
  Device d(o);
  const uint32_t n = d.server->ring_size();
  for (uint32_t i = 0; i < n; ++i)
    BOOST_TEST_REQUIRE(d.client->Submit(Req(VNVRAMIF_OP_BARRIER)).ok());
  BOOST_TEST_REQUIRE(d.client->Kick().ok());
  uint32_t calls = 0;
  size_t answered = 0;
  for (;;) {
    auto p = d.server->Process();
    BOOST_TEST_REQUIRE(p.ok());
    ++calls;
    auto polled = d.client->Poll();
    BOOST_TEST_REQUIRE(polled.ok());
    BOOST_TEST(polled->size() <= 4u);
    answered += polled->size();
    if (*p == RingServer::Progress::kIdle) break;
    BOOST_TEST_REQUIRE(calls < 1000u);
  }
  BOOST_TEST(answered == size_t{n});
  BOOST_TEST(calls >= n / 4);
  BOOST_TEST(d.server->Stats().budget_exhausted >= n / 4 - 1);
}

// --- group commit and ordering ------------------------------------------------

BOOST_AUTO_TEST_CASE(PersistsOfOneBatchShareOneSinkCall) {
  Device d;
  std::vector<vnvramif_request> reqs;
  reqs.reserve(5);
  for (int i = 0; i < 5; ++i) reqs.push_back(Req(VNVRAMIF_OP_PERSIST, i * 4096, 10));
  const auto done = d.SubmitAllAndServe(reqs);
  BOOST_TEST_REQUIRE(done.size() == 5u);
  BOOST_TEST(d.sink.calls == 1u);
  BOOST_TEST(d.sink.last_batch.size() == 5u);
  for (const auto& c : done) {
    BOOST_TEST(c.status == VNVRAMIF_RSP_OKAY);
    BOOST_TEST(c.durable_seq == 1u);
  }
  BOOST_TEST(d.server->Stats().coalesced == 5u);
}

BOOST_AUTO_TEST_CASE(WithoutGroupCommitEveryPersistHasItsOwnSinkCall) {
  RingServerOptions o;
  o.group_commit = false;
  Device d(o);
  std::vector<vnvramif_request> reqs(5, Req(VNVRAMIF_OP_PERSIST, 0, 10));
  const auto done = d.SubmitAllAndServe(reqs);
  BOOST_TEST_REQUIRE(done.size() == 5u);
  BOOST_TEST(d.sink.calls == 5u);
  for (size_t i = 0; i < done.size(); ++i) BOOST_TEST(done[i].durable_seq == i + 1);
}

BOOST_AUTO_TEST_CASE(BarrierCommitsTheGroupBeforeItAndResponsesStayInRingOrder) {
  Device d;
  std::vector<vnvramif_request> reqs = {
      Req(VNVRAMIF_OP_PERSIST, 0, 1),  Req(VNVRAMIF_OP_PERSIST, 8, 1), Req(VNVRAMIF_OP_BARRIER),
      Req(VNVRAMIF_OP_PERSIST, 16, 1), Req(VNVRAMIF_OP_GET_INFO),      Req(77)};
  const auto done = d.SubmitAllAndServe(reqs);
  BOOST_TEST_REQUIRE(done.size() == reqs.size());
  for (size_t i = 0; i < done.size(); ++i) BOOST_TEST(done[i].operation == reqs[i].operation);
  BOOST_TEST(d.sink.calls == 2u);
  BOOST_TEST(done[0].durable_seq == 1u);
  BOOST_TEST(done[1].durable_seq == 1u);
  BOOST_TEST(done[2].durable_seq == 1u);  // the barrier saw the group durable
  BOOST_TEST(done[3].durable_seq == 2u);
  BOOST_TEST(done[5].status == VNVRAMIF_RSP_EOPNOTSUPP);
}

BOOST_AUTO_TEST_CASE(FailedGroupCommitFailsEveryMember) {
  Device d;
  d.sink.fail = true;
  std::vector<vnvramif_request> reqs(3, Req(VNVRAMIF_OP_PERSIST, 0, 10));
  const auto done = d.SubmitAllAndServe(reqs);
  BOOST_TEST_REQUIRE(done.size() == 3u);
  for (const auto& c : done) BOOST_TEST(c.status == VNVRAMIF_RSP_ERROR);
  BOOST_TEST(d.sink.calls == 1u);
}

BOOST_AUTO_TEST_CASE(ARetryableSinkFailureAnswersEagainSoTheFrontendFailsOver) {
  // Not the primary any more, or replicas silent past the persist timeout
  // (a partitioned primary): another path, or this one later, may succeed.
  for (const Status& why : {Status::FailedPrecondition("stepped down"),
                            Status::Unavailable("replicas did not acknowledge in time")}) {
    Device d;
    d.sink.fail = true;
    d.sink.fail_status = why;
    std::vector<vnvramif_request> reqs(2, Req(VNVRAMIF_OP_PERSIST, 0, 10));
    const auto done = d.SubmitAllAndServe(reqs);
    BOOST_TEST_REQUIRE(done.size() == 2u);
    for (const auto& c : done) BOOST_TEST(c.status == VNVRAMIF_RSP_EAGAIN, why.ToString());
  }
}

// --- notification ----------------------------------------------------------

BOOST_AUTO_TEST_CASE(ServerKicksTheFrontendOnlyWhenItWaitsForResponses) {
  Device d;
  BOOST_TEST_REQUIRE(d.client->Submit(Req(VNVRAMIF_OP_BARRIER)).ok());
  BOOST_TEST_REQUIRE(d.client->Kick().ok());
  BOOST_TEST(d.frontend_kicks == 1);  // the backend armed req_event at init
  BOOST_TEST(d.Serve().ok());
  BOOST_TEST(d.backend_kicks == 1);   // rsp_event starts at 1
  BOOST_TEST(d.client->Poll().ok());  // re-arms rsp_event
  BOOST_TEST_REQUIRE(d.client->Submit(Req(VNVRAMIF_OP_BARRIER)).ok());
  BOOST_TEST_REQUIRE(d.client->Kick().ok());
  BOOST_TEST(d.frontend_kicks == 2);  // Process() re-armed req_event
  BOOST_TEST(d.Serve().ok());
  BOOST_TEST(d.backend_kicks == 2);
  // The frontend did not poll: it did not ask to be kicked again.
  BOOST_TEST_REQUIRE(d.client->Submit(Req(VNVRAMIF_OP_BARRIER)).ok());
  BOOST_TEST_REQUIRE(d.client->Kick().ok());
  BOOST_TEST(d.Serve().ok());
  BOOST_TEST(d.backend_kicks == 2);
}

// --- statistics ------------------------------------------------------------

BOOST_AUTO_TEST_CASE(StatsCountRequestsBytesErrorsAndPersistLatency) {
  ManualClock clock;
  RingServerOptions o;
  o.clock = &clock;
  Device d(o);
  d.sink.on_persist = [&] { clock.Advance(std::chrono::microseconds(5)); };
  d.Call(Req(VNVRAMIF_OP_PERSIST, 0, 100));
  d.Call(Req(VNVRAMIF_OP_PERSIST, 0, 50));
  d.Call(Req(VNVRAMIF_OP_GET_INFO));
  d.Call(Req(VNVRAMIF_OP_PERSIST, kRegionSize, 1));  // ERANGE
  d.Call(Req(99));
  const RingStats st = d.server->Stats();
  BOOST_TEST(st.requests[VNVRAMIF_OP_PERSIST] == 3u);
  BOOST_TEST(st.requests[VNVRAMIF_OP_GET_INFO] == 1u);
  BOOST_TEST(st.unknown_op == 1u);
  BOOST_TEST(st.total_requests() == 5u);
  BOOST_TEST(st.rejected == 2u);
  BOOST_TEST(st.bytes_persisted == 150u);
  BOOST_TEST(st.responses == 5u);
  BOOST_TEST(st.sink_calls == 2u);
  BOOST_TEST(st.persist_latency.count == 2u);
  BOOST_TEST(st.persist_latency.sum_ns == 10000u);
  BOOST_TEST(st.persist_latency.max_ns == 5000u);
  BOOST_TEST(st.persist_latency.buckets[3] == 2u);  // [4, 8) us
  BOOST_TEST(st.persist_latency.QuantileUpperBoundMicros(0.5) == 8u);
}

// --- double fetch ------------------------------------------------------------

BOOST_AUTO_TEST_CASE(ServerActsOnItsCopyWhenTheSharedRequestChangesAfterValidation) {
  // While the server maps the segments of a valid WRITE (after it copied
  // and validated the request), the "guest" rewrites the request in the
  // ring to something huge. The server must write exactly the validated
  // bytes at the validated offset.
  Device d;
  std::memset(d.mapper.granted.page(0), 0x11, 4096);
  d.mapper.on_map = [&] {
    vnvramif_request* slot = &d.sring->ring[0].req;
    slot->offset = kRegionSize - 1;
    slot->length = ~uint64_t{0};
    slot->nr_segments = 255;
    slot->page_offset = 4095;
    slot->operation = VNVRAMIF_OP_READ;
  };
  d.sink.on_persist = [&] {
    vnvramif_request* slot = &d.sring->ring[0].req;
    slot->offset = 0;
    slot->length = kRegionSize * 4;
  };
  const Completion c = d.Call(CopyReq(VNVRAMIF_OP_WRITE, 4096, 100, 1, 1));
  BOOST_TEST(c.status == VNVRAMIF_RSP_OKAY);
  BOOST_TEST(c.operation == VNVRAMIF_OP_WRITE);
  BOOST_TEST(c.value == 100u);
  for (size_t i = 0; i < kRegionSize; ++i) {
    const std::byte want = (i >= 4096 && i < 4196) ? std::byte{0x11} : std::byte{0};
    BOOST_TEST_REQUIRE((d.region.span()[i] == want), "region byte " << i);
  }
  BOOST_TEST_REQUIRE(d.sink.last_batch.size() == 1u);
  BOOST_TEST(d.sink.last_batch[0].offset == 4096u);
  BOOST_TEST(d.sink.last_batch[0].length == 100u);
  BOOST_TEST(d.mapper.max_refs_seen == 1u);
}

BOOST_AUTO_TEST_CASE(ConcurrentlyFlippedRequestFieldsNeverCauseOutOfBoundsEffects) {
  // A hostile guest thread keeps flipping every field of every ring slot
  // between valid and wildly invalid values while the server works through
  // ring after ring of requests. Torn and flipped copies may be accepted or
  // rejected, but whatever the server acts on must be in bounds: the region
  // and the mapped pages sit between guard pages (an overrun faults), the
  // sink checks every range, the mapper sees at most MAX_SEGMENTS refs.
  Device d;
  const uint32_t n = d.server->ring_size();
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> flips{0};
  std::thread guest([&] {
    uint64_t x = 0x9E3779B97F4A7C15ull;
    while (!stop.load(std::memory_order_relaxed)) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      vnvramif_request* slot = &d.sring->ring[x % n].req;
      // Flip one field per store, to a plausible or to a hostile value, so
      // the server's copies are every mix of both.
      const bool evil = ((x >> 8) & 3) == 0;
      switch ((x >> 10) % 6) {
        case 0:
          __atomic_store_n(&slot->offset,
                           evil ? ~uint64_t{0} - (x & 0xFFF) : (x >> 20) % (kRegionSize - 8192),
                           __ATOMIC_RELAXED);
          break;
        case 1:
          __atomic_store_n(&slot->length, evil ? (x >> 16) : 1 + (x >> 24) % 4096,
                           __ATOMIC_RELAXED);
          break;
        case 2:
          __atomic_store_n(&slot->nr_segments, static_cast<uint8_t>(evil ? 200 : 1 + (x >> 40) % 2),
                           __ATOMIC_RELAXED);
          break;
        case 3:
          __atomic_store_n(&slot->page_offset, static_cast<uint16_t>(evil ? 65535 : 0),
                           __ATOMIC_RELAXED);
          break;
        case 4: {
          static constexpr uint8_t kOps[] = {VNVRAMIF_OP_PERSIST, VNVRAMIF_OP_WRITE,
                                             VNVRAMIF_OP_READ};
          __atomic_store_n(&slot->operation, evil ? uint8_t{200} : kOps[(x >> 52) % 3],
                           __ATOMIC_RELAXED);
          break;
        }
        case 5:
          __atomic_store_n(
              &slot->gref[(x >> 33) % 2],
              static_cast<uint32_t>(evil ? 0xFFFFFFFFu : 1 + (x >> 37) % kGrantedPages),
              __ATOMIC_RELAXED);
          break;
      }
      flips.fetch_add(1, std::memory_order_relaxed);
    }
  });

  // The frontend side is driven by hand (the client would rightly refuse
  // the responses the flipper corrupts): fill the ring with valid requests,
  // publish them, let the server consume them, repeat.
  while (flips.load(std::memory_order_relaxed) < 1000) std::this_thread::yield();
  RING_IDX prod = 0;
  uint64_t served = 0;
  // At least 300 rounds and 200k flips: the two threads genuinely overlap.
  for (int round = 0; round < 300 || (flips.load() < 200000 && round < 100000); ++round) {
    for (uint32_t i = 0; i < n; ++i) {
      vnvramif_request r =
          i % 3 == 0   ? Req(VNVRAMIF_OP_PERSIST, i * 64, 64)
          : i % 3 == 1 ? CopyReq(VNVRAMIF_OP_WRITE, i * 100, 4096, 1, 1 + i % kGrantedPages)
                       : CopyReq(VNVRAMIF_OP_READ, i * 100, 5000, 2, 1 + i % (kGrantedPages - 1));
      r.id = served + i;
      std::memcpy(&d.sring->ring[(prod + i) % n].req, &r, sizeof(r));
    }
    prod += n;
    __atomic_store_n(&d.sring->req_prod, prod, __ATOMIC_RELEASE);
    for (;;) {
      auto p = d.server->Process();
      BOOST_TEST_REQUIRE(p.ok(), p.status().ToString());
      if (*p == RingServer::Progress::kIdle) break;
    }
    served += n;
  }
  stop = true;
  guest.join();

  BOOST_TEST(!d.server->fenced());
  const RingStats st = d.server->Stats();
  BOOST_TEST(st.total_requests() == served);
  BOOST_TEST(st.responses == served);
  BOOST_TEST(d.sink.out_of_bounds == 0u);
  BOOST_TEST(d.mapper.max_refs_seen <= size_t{VNVRAMIF_MAX_SEGMENTS});
  BOOST_TEST(d.mapper.live_mappings.load() == 0);
  BOOST_TEST(flips.load() > 0u);
  BOOST_TEST_MESSAGE("served " << served << " requests under " << flips.load() << " flips; "
                               << st.rejected << " rejected, " << d.mapper.maps << " mapped");
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace vnvram::backend
