#define BOOST_TEST_MODULE frontend_ring_client
#include "frontend/ring_client.h"

#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

namespace vnvram::frontend {
namespace {

// One page-aligned ring plus a hand-driven "backend" attached to it, which
// can answer correctly or lie.
struct Fixture {
  explicit Fixture(size_t pages = 1) : bytes(pages * VNVRAMIF_PAGE_SIZE) {
    mem = static_cast<std::byte*>(std::aligned_alloc(VNVRAMIF_PAGE_SIZE, bytes));
    auto c = RingClient::Create({mem, bytes}, [this] { ++kicks; });
    BOOST_TEST_REQUIRE(c.ok(), c.status().ToString());
    client = std::move(c).value();
    sring = reinterpret_cast<vnvramif_sring_t*>(mem);
    BACK_RING_INIT(&back, sring, bytes);
  }
  ~Fixture() {
    client.reset();
    std::free(mem);
  }

  uint64_t Submit(uint8_t op = VNVRAMIF_OP_PERSIST) {
    vnvramif_request r{};
    r.operation = op;
    r.length = 1;
    auto id = client->Submit(r);
    BOOST_TEST_REQUIRE(id.ok(), id.status().ToString());
    return *id;
  }
  // Takes one request off the ring, as a backend would.
  vnvramif_request Take() {
    vnvramif_request r;
    RING_COPY_REQUEST(&back, back.req_cons, &r);
    ++back.req_cons;
    return r;
  }
  void Answer(uint64_t id, uint8_t op, int16_t status = VNVRAMIF_RSP_OKAY, uint64_t seq = 1) {
    vnvramif_response* rsp = RING_GET_RESPONSE(&back, back.rsp_prod_pvt);
    std::memset(rsp, 0, sizeof(*rsp));
    rsp->id = id;
    rsp->operation = op;
    rsp->status = status;
    rsp->durable_seq = seq;
    ++back.rsp_prod_pvt;
  }
  void Push() { RING_PUSH_RESPONSES(&back); }

  size_t bytes;
  std::byte* mem = nullptr;
  std::unique_ptr<RingClient> client;
  vnvramif_sring_t* sring = nullptr;
  vnvramif_back_ring_t back{};
  int kicks = 0;
};

void ExpectCorrupt(RingClient& c) {
  auto polled = c.Poll();
  BOOST_TEST_REQUIRE(!polled.ok());
  BOOST_TEST((polled.status().code() == Code::kCorruption), polled.status().ToString());
  BOOST_TEST(c.in_error());
}

BOOST_AUTO_TEST_SUITE(RingClientTest)

BOOST_AUTO_TEST_CASE(CreateInitialisesTheSharedRing) {
  Fixture f;
  BOOST_TEST(f.sring->req_prod == 0u);
  BOOST_TEST(f.sring->rsp_prod == 0u);
  BOOST_TEST(f.sring->req_event == 1u);
  BOOST_TEST(f.sring->rsp_event == 1u);
  BOOST_TEST(f.client->ring_size() == static_cast<uint32_t>(VNVRAMIF_RING_SIZE(1)));
}

BOOST_AUTO_TEST_CASE(CreateRejectsRingsOfTheWrongShape) {
  auto* mem = static_cast<std::byte*>(std::aligned_alloc(4096, 32 * 4096));
  BOOST_TEST(!RingClient::Create({mem, 0}, nullptr).ok());
  BOOST_TEST(!RingClient::Create({mem, 4095}, nullptr).ok());
  BOOST_TEST(!RingClient::Create({mem, 3 * 4096}, nullptr).ok());
  BOOST_TEST(!RingClient::Create({mem, 32 * 4096}, nullptr).ok());
  BOOST_TEST(!RingClient::Create({mem + 1, 4096}, nullptr).ok());
  auto ok = RingClient::Create({mem, 16 * 4096}, nullptr);
  BOOST_TEST_REQUIRE(ok.ok());
  BOOST_TEST((*ok)->ring_size() == static_cast<uint32_t>(VNVRAMIF_RING_SIZE(16)));
  ok = Status::Internal("drop before free");
  std::free(mem);
}

BOOST_AUTO_TEST_CASE(SubmitAssignsFreshIdsAndNothingIsVisibleBeforeKick) {
  Fixture f;
  const uint64_t a = f.Submit();
  const uint64_t b = f.Submit();
  BOOST_TEST(a != b);
  BOOST_TEST(f.sring->req_prod == 0u);
  BOOST_TEST(f.client->Kick().ok());
  BOOST_TEST(f.sring->req_prod == 2u);
  BOOST_TEST(f.Take().id == a);
  BOOST_TEST(f.Take().id == b);
}

BOOST_AUTO_TEST_CASE(KickNotifiesOnlyWhenTheBackendAskedForAnEvent) {
  Fixture f;
  f.Submit();
  BOOST_TEST(f.client->Kick().ok());
  BOOST_TEST(f.kicks == 1);  // req_event starts at 1
  f.Submit();
  BOOST_TEST(f.client->Kick().ok());
  BOOST_TEST(f.kicks == 1);           // backend has not re-armed req_event
  BOOST_TEST(f.client->Kick().ok());  // nothing new: no kick
  BOOST_TEST(f.kicks == 1);
  f.sring->req_event = f.sring->req_prod + 1;
  f.Submit();
  BOOST_TEST(f.client->Kick().ok());
  BOOST_TEST(f.kicks == 2);
}

BOOST_AUTO_TEST_CASE(SubmitReportsResourceExhaustedWhenTheRingIsFull) {
  Fixture f;
  for (uint32_t i = 0; i < f.client->ring_size(); ++i) f.Submit();
  vnvramif_request r{};
  auto full = f.client->Submit(r);
  BOOST_TEST_REQUIRE(!full.ok());
  BOOST_TEST((full.status().code() == Code::kResourceExhausted));
  BOOST_TEST(!f.client->in_error());  // back-pressure, not an error
  BOOST_TEST(f.client->Kick().ok());
  const vnvramif_request first = f.Take();
  f.Answer(first.id, first.operation);
  f.Push();
  auto polled = f.client->Poll();
  BOOST_TEST_REQUIRE(polled.ok());
  BOOST_TEST(polled->size() == 1u);
  BOOST_TEST(f.client->Submit(r).ok());  // one slot free again
}

BOOST_AUTO_TEST_CASE(CorrectResponsesCompleteInFlightRequests) {
  Fixture f;
  const uint64_t a = f.Submit(VNVRAMIF_OP_PERSIST);
  const uint64_t b = f.Submit(VNVRAMIF_OP_GET_INFO);
  BOOST_TEST(f.client->Kick().ok());
  f.Take();
  f.Take();
  // Out of order is fine: ids, not positions, match responses.
  f.Answer(b, VNVRAMIF_OP_GET_INFO, VNVRAMIF_RSP_OKAY, 3);
  f.Answer(a, VNVRAMIF_OP_PERSIST, VNVRAMIF_RSP_ERANGE, 3);
  f.Push();
  auto polled = f.client->Poll();
  BOOST_TEST_REQUIRE(polled.ok());
  BOOST_TEST_REQUIRE(polled->size() == 2u);
  BOOST_TEST((*polled)[0].id == b);
  BOOST_TEST((*polled)[1].id == a);
  BOOST_TEST((*polled)[1].status == VNVRAMIF_RSP_ERANGE);
  BOOST_TEST(f.client->in_flight() == 0u);
  // Poll armed rsp_event for the next response.
  BOOST_TEST(f.sring->rsp_event == f.sring->rsp_prod + 1);
}

BOOST_AUTO_TEST_CASE(ResponseWithUnknownIdPutsTheClientInError) {
  Fixture f;
  f.Submit();
  BOOST_TEST(f.client->Kick().ok());
  f.Take();
  f.Answer(0xdeadbeef, VNVRAMIF_OP_PERSIST);
  f.Push();
  ExpectCorrupt(*f.client);
}

BOOST_AUTO_TEST_CASE(DuplicateResponseForOneIdPutsTheClientInError) {
  Fixture f;
  const uint64_t a = f.Submit();
  f.Submit();
  BOOST_TEST(f.client->Kick().ok());
  f.Take();
  f.Take();
  f.Answer(a, VNVRAMIF_OP_PERSIST);
  f.Answer(a, VNVRAMIF_OP_PERSIST);
  f.Push();
  ExpectCorrupt(*f.client);
}

BOOST_AUTO_TEST_CASE(StaleIdOfAReusedSlotPutsTheClientInError) {
  // The slot of a completed request is reused by the next one; a backend
  // that answers the old id again must not complete the new request.
  Fixture f;
  const uint64_t a = f.Submit();
  BOOST_TEST(f.client->Kick().ok());
  f.Take();
  f.Answer(a, VNVRAMIF_OP_PERSIST);
  f.Push();
  BOOST_TEST_REQUIRE(f.client->Poll().ok());
  const uint64_t b = f.Submit();
  BOOST_TEST(b != a);
  BOOST_TEST(f.client->Kick().ok());
  f.Take();
  f.Answer(a, VNVRAMIF_OP_PERSIST);
  f.Push();
  ExpectCorrupt(*f.client);
}

BOOST_AUTO_TEST_CASE(PollIntoAppendsWithoutDroppingWhatIsThere) {
  Fixture f;
  const uint64_t a = f.Submit();
  BOOST_TEST(f.client->Kick().ok());
  f.Take();
  f.Answer(a, VNVRAMIF_OP_PERSIST);
  f.Push();
  std::vector<Completion> out(1);
  BOOST_TEST_REQUIRE(f.client->PollInto(&out).ok());
  BOOST_TEST_REQUIRE(out.size() == 2u);
  BOOST_TEST(out[1].id == a);
}

BOOST_AUTO_TEST_CASE(ResponseWithTheWrongOperationForItsIdPutsTheClientInError) {
  Fixture f;
  const uint64_t a = f.Submit(VNVRAMIF_OP_PERSIST);
  BOOST_TEST(f.client->Kick().ok());
  f.Take();
  f.Answer(a, VNVRAMIF_OP_READ);
  f.Push();
  ExpectCorrupt(*f.client);
}

BOOST_AUTO_TEST_CASE(ResponseWithAnUnknownStatusPutsTheClientInError) {
  Fixture f;
  const uint64_t a = f.Submit();
  BOOST_TEST(f.client->Kick().ok());
  f.Take();
  f.Answer(a, VNVRAMIF_OP_PERSIST, 1234);
  f.Push();
  ExpectCorrupt(*f.client);
}

BOOST_AUTO_TEST_CASE(DurableSequenceGoingBackwardsPutsTheClientInError) {
  Fixture f;
  const uint64_t a = f.Submit();
  const uint64_t b = f.Submit();
  const uint64_t c = f.Submit();
  BOOST_TEST(f.client->Kick().ok());
  f.Take();
  f.Take();
  f.Take();
  // Equal is fine (nothing new became durable); in a later poll too.
  f.Answer(a, VNVRAMIF_OP_PERSIST, VNVRAMIF_RSP_OKAY, 7);
  f.Answer(b, VNVRAMIF_OP_PERSIST, VNVRAMIF_RSP_OKAY, 7);
  f.Push();
  auto polled = f.client->Poll();
  BOOST_TEST_REQUIRE(polled.ok(), polled.status().ToString());
  BOOST_TEST(polled->size() == 2u);
  BOOST_TEST(f.client->durable_seq() == 7u);
  f.Answer(c, VNVRAMIF_OP_PERSIST, VNVRAMIF_RSP_OKAY, 6);
  f.Push();
  ExpectCorrupt(*f.client);
  BOOST_TEST(f.client->error().message().find("went back") != std::string::npos,
             f.client->error().ToString());
}

BOOST_AUTO_TEST_CASE(RspProdFarBeyondTheRingPutsTheClientInError) {
  Fixture f;
  f.Submit();
  BOOST_TEST(f.client->Kick().ok());
  f.sring->rsp_prod = 1000000;
  ExpectCorrupt(*f.client);
}

BOOST_AUTO_TEST_CASE(RspProdAheadOfThePushedRequestsPutsTheClientInError) {
  // Within the ring size, so RING_RESPONSE_PROD_OVERFLOW alone would pass
  // it; but only one request was pushed (the second is merely queued).
  Fixture f;
  const uint64_t a = f.Submit();
  BOOST_TEST(f.client->Kick().ok());
  f.Submit();
  f.Answer(a, VNVRAMIF_OP_PERSIST);
  f.Answer(a + 1, VNVRAMIF_OP_PERSIST);
  f.Push();
  ExpectCorrupt(*f.client);
}

BOOST_AUTO_TEST_CASE(RspProdWrappedBackwardsPutsTheClientInError) {
  Fixture f;
  f.Submit();
  BOOST_TEST(f.client->Kick().ok());
  f.sring->rsp_prod = 0xFFFFFFFFu;  // "minus one": a huge unsigned distance
  ExpectCorrupt(*f.client);
}

BOOST_AUTO_TEST_CASE(ErrorStateIsStickyForEveryCall) {
  Fixture f;
  f.Submit();
  BOOST_TEST(f.client->Kick().ok());
  f.sring->rsp_prod = 77;
  ExpectCorrupt(*f.client);
  vnvramif_request r{};
  auto s = f.client->Submit(r);
  BOOST_TEST((s.status().code() == Code::kCorruption));
  BOOST_TEST((f.client->Kick().code() == Code::kCorruption));
  BOOST_TEST((f.client->Poll().status().code() == Code::kCorruption));
  auto call = f.client->Call(r, [] { return Status::Ok(); });
  BOOST_TEST((call.status().code() == Code::kCorruption));
}

BOOST_AUTO_TEST_CASE(CallWaitsForItsOwnResponseAndKeepsOthersForPoll) {
  Fixture f;
  const uint64_t early = f.Submit(VNVRAMIF_OP_BARRIER);
  int waits = 0;
  vnvramif_request r{};
  r.operation = VNVRAMIF_OP_GET_INFO;
  auto done = f.client->Call(r, [&] {
    ++waits;
    while (f.back.req_cons != f.sring->req_prod) {
      const vnvramif_request q = f.Take();
      f.Answer(q.id, q.operation, VNVRAMIF_RSP_OKAY, 9);
    }
    f.Push();
    return Status::Ok();
  });
  BOOST_TEST_REQUIRE(done.ok(), done.status().ToString());
  BOOST_TEST(done->operation == VNVRAMIF_OP_GET_INFO);
  BOOST_TEST(done->durable_seq == 9u);
  BOOST_TEST(waits == 1);
  auto rest = f.client->Poll();
  BOOST_TEST_REQUIRE(rest.ok());
  BOOST_TEST_REQUIRE(rest->size() == 1u);
  BOOST_TEST((*rest)[0].id == early);
}

BOOST_AUTO_TEST_CASE(CallReturnsTheWaitFunctionsError) {
  Fixture f;
  vnvramif_request r{};
  auto done = f.client->Call(r, [] { return Status::Timeout("no event"); });
  BOOST_TEST((done.status().code() == Code::kTimeout));
  BOOST_TEST(!f.client->in_error());
  BOOST_TEST(f.client->in_flight() == 1u);
}

BOOST_AUTO_TEST_CASE(ManyRoundsReuseEverySlotOfTheRing) {
  // 2000 requests through a 32-entry ring: every slot is reused many times
  // and the id bookkeeping stays exact.
  Fixture f;
  for (int round = 0; round < 100; ++round) {
    std::vector<uint64_t> ids;
    ids.reserve(20);
    for (int i = 0; i < 20; ++i) ids.push_back(f.Submit());
    BOOST_TEST_REQUIRE(f.client->Kick().ok());
    for (int i = 0; i < 20; ++i) {
      const vnvramif_request q = f.Take();
      f.Answer(q.id, q.operation);
    }
    f.Push();
    auto polled = f.client->Poll();
    BOOST_TEST_REQUIRE(polled.ok(), polled.status().ToString());
    BOOST_TEST_REQUIRE(polled->size() == 20u);
  }
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace vnvram::frontend
