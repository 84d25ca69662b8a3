// libvnvram's C++ API in-process (this test process acts as guest domain
// 1 of a sim host whose xenstored and vnvramd are real child processes):
// the calls and their errors, batching, copy mode, many threads, a backend
// killed with a persist in flight, a detach under an open device, and a
// hostile backend (this process acting as domain 2) whose responses lie.
// Waits are on events with deadlines; nothing sleeps.
#define BOOST_TEST_MODULE libvnvram_api
#include <poll.h>
#include <signal.h>

#include <boost/test/unit_test.hpp>
#include <cstring>
#include <future>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/endian.h"
#include "tests/sim_host.h"
#include "vnvram/vnvram.hpp"
#include "vnvram/vnvramif.h"
#include "xenstore-schema/schema.h"

namespace vnvram {
namespace {

using testing::Host;
using testing::kWait;

std::unique_ptr<Device> OpenDev(Host& h, uint32_t dev = 0,
                                std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  OpenOptions o;
  o.platform = h.Dom1();
  o.devid = dev;
  o.timeout = timeout;
  auto d = Device::Open(o);
  BOOST_TEST_REQUIRE(d.ok(), d.status().ToString() << "\n" << h.BackendLog());
  return std::move(d).value();
}

void Fill(std::span<std::byte> s, uint8_t seed) {
  for (size_t i = 0; i < s.size(); ++i) s[i] = static_cast<std::byte>((i * 13 + seed) & 0xFF);
}

BOOST_AUTO_TEST_CASE(CallsAndTheirErrors) {
  Host h;
  h.Attach(0, "1M");
  auto d = OpenDev(h);
  BOOST_TEST(d->size() == 1048576u);
  BOOST_TEST(d->region().size() == 1048576u);
  BOOST_TEST(d->generation() == 1u);
  BOOST_TEST((d->state() == DeviceState::kConnected));

  Fill(d->region().subspan(0, 4096), 1);
  BOOST_TEST_REQUIRE(d->persist(0, 4096).ok());
  BOOST_TEST(d->persist(0, 0).ok());
  BOOST_TEST((d->persist(1048576 - 10, 11).code() == Code::kOutOfRange));
  BOOST_TEST((d->persist(UINT64_MAX, 2).code() == Code::kOutOfRange));
  const uint64_t seq = d->durable_seq();
  BOOST_TEST(seq > 0u);

  std::vector<std::byte> src(100000);
  Fill(src, 7);
  BOOST_TEST_REQUIRE(d->memcpy_persist(200000, src).ok());
  BOOST_TEST(std::memcmp(d->region().data() + 200000, src.data(), src.size()) == 0);

  // Copy mode, unaligned and longer than one request's 32 KiB.
  std::vector<std::byte> got(src.size());
  BOOST_TEST_REQUIRE(d->read(200000, got).ok());
  BOOST_TEST(std::memcmp(got.data(), src.data(), src.size()) == 0);
  Fill(src, 9);
  BOOST_TEST_REQUIRE(d->write(512345, src).ok());
  BOOST_TEST(std::memcmp(d->region().data() + 512345, src.data(), src.size()) == 0);
  BOOST_TEST((d->read(1048576 - 1, got).code() == Code::kOutOfRange));

  // Batching.
  for (uint64_t i = 0; i < 500; ++i) BOOST_TEST_REQUIRE(d->persist_async(i * 64, 64).ok());
  BOOST_TEST_REQUIRE(d->barrier().ok());
  BOOST_TEST_REQUIRE(d->flush().ok());
  BOOST_TEST_REQUIRE(d->drain().ok());
  BOOST_TEST(d->durable_seq() > seq);
  // A bounded queue: one persist_async and drain_to(3) per record keeps at
  // most four requests open; drain_to(0) is drain().
  const uint64_t before = d->durable_seq();
  for (uint64_t i = 0; i < 200; ++i) {
    BOOST_TEST_REQUIRE(d->persist_async(i * 64, 64).ok());
    BOOST_TEST_REQUIRE(d->drain_to(3).ok());
  }
  BOOST_TEST_REQUIRE(d->drain_to(0).ok());
  BOOST_TEST(d->durable_seq() > before);
  BOOST_TEST((d->persist_async(1048576, 1).code() == Code::kOutOfRange));
  BOOST_TEST_REQUIRE(d->drain_to(1000).ok());

  auto info = d->info();
  BOOST_TEST_REQUIRE(info.ok(), info.status().ToString());
  BOOST_TEST(info->region_size == 1048576u);
  BOOST_TEST(info->volume == testing::kVolume);
  BOOST_TEST(info->feature_copy_mode);
  BOOST_TEST(info->generation == 1u);

  BOOST_TEST_REQUIRE(d->close().ok());
  BOOST_TEST(d->close().ok());  // idempotent
  BOOST_TEST((d->state() == DeviceState::kClosed));
  BOOST_TEST((d->persist(0, 1).code() == Code::kFailedPrecondition));
  BOOST_TEST(d->region().empty());

  // A device that does not exist.
  OpenOptions o;
  o.platform = h.Dom1();
  o.devid = 42;
  auto missing = Device::Open(o);
  BOOST_TEST((missing.status().code() == Code::kNotFound), missing.status().ToString());
}

BOOST_AUTO_TEST_CASE(OpenByVolumeFindsThePathOfThatVolume) {
  Host h;
  h.Attach(4, "64K");  // testing::kVolume
  const std::string other = "11111111-2222-4333-8444-555555555555";
  auto r = h.Tool(
      {"attach", "1", "--backend", "0", "--devid", "2", "--size", "128K", "--volume", other});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.out);
  OpenOptions o;
  o.platform = h.Dom1();
  o.volume = other;
  auto d = Device::Open(o);
  BOOST_TEST_REQUIRE(d.ok(), d.status().ToString());
  BOOST_TEST((*d)->size() == 131072u);
  auto info = (*d)->info();
  BOOST_TEST_REQUIRE(info.ok());
  BOOST_TEST(info->volume == other);
  o.volume = "22222222-2222-4333-8444-555555555555";
  BOOST_TEST((Device::Open(o).status().code() == Code::kNotFound));
  o.volume = "not-a-uuid";
  BOOST_TEST((Device::Open(o).status().code() == Code::kInvalidArgument));
}

BOOST_AUTO_TEST_CASE(ManyThreadsShareOneDevice) {
  Host h;
  h.Attach(0, "1M");
  auto d = OpenDev(h);
  std::vector<std::thread> threads;
  threads.reserve(4);
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (uint64_t i = 0; i < 300; ++i) {
        const uint64_t off = (static_cast<uint64_t>(t) * 300 + i) * 256;
        std::vector<std::byte> b(256, static_cast<std::byte>(t + 1));
        Status s = (i % 3 == 0) ? d->memcpy_persist(off, b)
                                : (i % 3 == 1 ? d->persist(off, 256) : d->persist_async(off, 256));
        if (!s.ok()) ++failures;
      }
      if (!d->drain().ok()) ++failures;
    });
  }
  for (auto& th : threads) th.join();
  BOOST_TEST(failures.load() == 0);
  BOOST_TEST(d->close().ok());
}

BOOST_AUTO_TEST_CASE(PersistInFlightWhenTheBackendDiesIsReissuedAfterItReturns) {
  Host h;
  h.Attach(0, "1M");
  auto d = OpenDev(h);
  const std::byte* old_base = d->region().data();
  // The backend dies without a word (no vault, state left Connected).
  h.backend->Kill();
  std::span<std::byte> r = d->region();
  Fill(r.subspan(8192, 4096), 3);
  // Queued on a ring nobody serves.
  BOOST_TEST_REQUIRE(d->persist_async(8192, 4096).ok());
  // A new instance adopts the device and publishes new grants; drain()
  // sees it, re-handshakes, carries the range into the new mapping and
  // re-issues the persist.
  h.StartBackend();
  Status s = d->drain();
  BOOST_TEST_REQUIRE(s.ok(), s.ToString() << "\n" << h.BackendLog());
  BOOST_TEST(d->generation() == 2u);
  std::span<std::byte> now = d->region();
  BOOST_TEST(now.size() == 1048576u);
  std::vector<std::byte> want(4096);
  Fill(want, 3);
  BOOST_TEST(std::memcmp(now.data() + 8192, want.data(), 4096) == 0);
  // The bytes are in the backend's memory: read them back in copy mode.
  std::vector<std::byte> got(4096);
  BOOST_TEST_REQUIRE(d->read(8192, got).ok());
  BOOST_TEST(std::memcmp(got.data(), want.data(), 4096) == 0);
  (void)old_base;
  BOOST_TEST(d->close().ok());
}

BOOST_AUTO_TEST_CASE(DetachUnderAnOpenDeviceGivesUnavailableNotAHang) {
  Host h;
  h.Attach(0, "1M");
  auto d = OpenDev(h);
  BOOST_TEST_REQUIRE(d->persist(0, 64).ok());
  auto r = h.Tool({"detach", "1", "0"});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.out);
  Status s = d->persist(0, 64);
  BOOST_TEST((s.code() == Code::kUnavailable), s.ToString());
  BOOST_TEST((d->state() == DeviceState::kClosed));
  BOOST_TEST(d->close().ok());
}

// ---------------------------------------------------------------------------
// A hostile backend: this process acts as domain 2 and speaks the protocol
// by hand, then lies in a response.
struct FakeBackend {
  explicit FakeBackend(Host& h) : host(h) {
    auto p = platform::OpenPlatform(h.Dom(2));
    BOOST_TEST_REQUIRE(p.ok(), p.status().ToString());
    plat = std::move(p).value();
    xs = std::move(plat->OpenXenStore()).value();
    sharer = std::move(plat->OpenGrantSharer()).value();
    mapper = std::move(plat->OpenGrantMapper()).value();
    evtchn = std::move(plat->OpenEventChannels()).value();
  }

  std::string Key(std::string_view k) const { return schema::BackendKey(2, 1, 5, k); }

  void Publish() {
    auto r = sharer->Share(1, 16, true);
    BOOST_TEST_REQUIRE(r.ok(), r.status().ToString());
    region = std::move(r).value();
    auto d = sharer->Share(1, 1, false);
    BOOST_TEST_REQUIRE(d.ok(), d.status().ToString());
    dir = std::move(d).value();
    for (size_t i = 0; i < 16; ++i)
      StoreLE<uint32_t>(dir->data().data() + 4 * i, region->refs()[i]);
    namespace be = schema::be;
    auto put = [&](std::string_view k, const std::string& v) {
      BOOST_TEST_REQUIRE(xs->Write(platform::kNoTx, Key(k), v).ok());
    };
    put(be::kMaxRingPageOrder, "0");
    put(be::kRegionSize, "65536");
    put(be::kRegionPages, "16");
    put(be::kPageDirRefs, "1");
    put(be::PageDirRef(0), std::to_string(dir->refs()[0]));
    put(be::kFeaturePersist, "1");
    put(be::kFeatureCopyMode, "1");
    put(be::kState, "2");
  }

  // Waits (on a watch) until the frontend's state node reads `state`.
  void WaitFrontend(std::string_view state) {
    const std::string fstate = schema::FrontendKey(1, 5, schema::fe::kState);
    if (!watching) {
      BOOST_TEST_REQUIRE(xs->Watch(fstate, "fake:fe").ok());
      watching = true;
    }
    Deadline dl(SystemClock::Instance(), kWait);
    for (;;) {
      auto v = xs->Read(platform::kNoTx, fstate);
      if (v.ok() && *v == state) return;
      BOOST_TEST_REQUIRE(!dl.Expired(), "frontend state never " << state);
      pollfd pfd{xs->WatchFd(), POLLIN, 0};
      poll(&pfd, 1, dl.RemainingMillisForPoll());
      while (true) {
        auto ev = xs->ReadWatch();
        if (!ev.ok() || !ev->has_value()) break;
      }
    }
  }

  // Fails the handshake the way vnvramd does when the ring refs it read
  // cannot be mapped: error node, Closing; then, once the frontend is
  // Closed, Closed and (on its Initialising) InitWait again.
  void Refuse(const std::string& why) {
    WaitFrontend("3");
    BOOST_TEST_REQUIRE(xs->Write(platform::kNoTx, Key(schema::be::kError), why).ok());
    BOOST_TEST_REQUIRE(xs->Write(platform::kNoTx, Key(schema::be::kState), "5").ok());
  }
  void Reopen() {
    WaitFrontend("6");
    BOOST_TEST_REQUIRE(xs->Remove(platform::kNoTx, Key(schema::be::kError)).ok());
    BOOST_TEST_REQUIRE(xs->Write(platform::kNoTx, Key(schema::be::kState), "6").ok());
    WaitFrontend("1");
    BOOST_TEST_REQUIRE(xs->Write(platform::kNoTx, Key(schema::be::kState), "2").ok());
  }

  // Waits for the frontend's Initialised, maps its ring, binds, Connected.
  void Accept() {
    WaitFrontend("3");
    namespace fe = schema::fe;
    auto ref = xs->Read(platform::kNoTx, schema::FrontendKey(1, 5, fe::kRingRef));
    auto port = xs->Read(platform::kNoTx, schema::FrontendKey(1, 5, fe::kEventChannel));
    BOOST_TEST_REQUIRE(ref.ok());
    BOOST_TEST_REQUIRE(port.ok());
    const platform::GrantRef refs[1] = {static_cast<platform::GrantRef>(*ParseU32(*ref))};
    auto m = mapper->Map(1, refs, true);
    BOOST_TEST_REQUIRE(m.ok(), m.status().ToString());
    ring = std::move(m).value();
    BACK_RING_INIT(&back, reinterpret_cast<vnvramif_sring_t*>(ring->data().data()), 4096);
    auto local = evtchn->BindInterdomain(1, *ParseU32(*port));
    BOOST_TEST_REQUIRE(local.ok(), local.status().ToString());
    local_port = *local;
    BOOST_TEST_REQUIRE(xs->Write(platform::kNoTx, Key(schema::be::kState), "4").ok());
  }

  // Takes the next request (waiting on the event channel).
  vnvramif_request Next() {
    Deadline dl(SystemClock::Instance(), kWait);
    for (;;) {
      if (RING_HAS_UNCONSUMED_REQUESTS(&back)) {
        vnvramif_request r;
        RING_COPY_REQUEST(&back, back.req_cons, &r);
        ++back.req_cons;
        return r;
      }
      int more = 0;
      RING_FINAL_CHECK_FOR_REQUESTS(&back, more);  // re-arms req_event: kick us
      if (more) continue;
      BOOST_TEST_REQUIRE(!dl.Expired(), "no request from the frontend");
      pollfd pfd{evtchn->Fd(), POLLIN, 0};
      poll(&pfd, 1, dl.RemainingMillisForPoll());
      for (;;) {
        auto p = evtchn->Pending();
        if (!p.ok() || !p->has_value()) break;
        (void)evtchn->Unmask(**p);
      }
    }
  }

  // The durable sequence an honest answer carries.
  static constexpr uint64_t kSeq = 5;

  void Respond(uint64_t id, uint8_t op, int16_t status, uint64_t value, uint64_t seq = kSeq) {
    vnvramif_response* rsp = RING_GET_RESPONSE(&back, back.rsp_prod_pvt);
    std::memset(rsp, 0, sizeof(*rsp));
    rsp->id = id;
    rsp->operation = op;
    rsp->status = status;
    rsp->durable_seq = seq;
    rsp->value = value;
    ++back.rsp_prod_pvt;
    RING_PUSH_RESPONSES(&back);
    (void)evtchn->Notify(local_port);  // always: the test does not count kicks
  }

  Host& host;
  std::unique_ptr<platform::Platform> plat;
  std::unique_ptr<platform::XenStore> xs;
  std::unique_ptr<platform::GrantSharer> sharer;
  std::unique_ptr<platform::GrantMapper> mapper;
  std::unique_ptr<platform::EventChannels> evtchn;
  std::unique_ptr<platform::SharedPages> region, dir;
  std::unique_ptr<platform::GrantMapping> ring;
  vnvramif_back_ring_t back{};
  platform::EvtchnPort local_port = 0;
  bool watching = false;
};

// Opens device 5 of domain 1 (attached to the fake backend) in a thread.
std::future<Result<std::unique_ptr<Device>>> OpenAsync(Host& h) {
  return std::async(std::launch::async, [&h] {
    OpenOptions o;
    o.platform = h.Dom1();
    o.devid = 5;
    o.timeout = std::chrono::seconds(10);
    return Device::Open(o);
  });
}

// A frontend process killed after publishing its ring leaves Initialised
// with refs that are gone; the backend may read them after the next
// opener saw InitWait, and fail the device. The opener goes round once
// more with its own ring instead of failing (the journal crash test's
// kill -9 loop met this under load).
BOOST_AUTO_TEST_CASE(AHandshakeTheBackendRefusesOnceIsTriedAgain) {
  Host h({1, 2});
  auto r = h.Tool({"attach", "1", "--backend", "2", "--devid", "5", "--size", "64K", "--volume",
                   testing::kVolume});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.out);
  FakeBackend fake(h);
  fake.Publish();
  auto opening = OpenAsync(h);
  fake.Refuse("map ring: grant ref 96 of domain 1: the granting handle has gone");
  fake.Reopen();
  fake.Accept();
  vnvramif_request probe = fake.Next();
  BOOST_TEST_REQUIRE(probe.operation == VNVRAMIF_OP_GET_INFO);
  fake.Respond(probe.id, probe.operation, VNVRAMIF_RSP_OKAY, 65536);
  auto dev = opening.get();
  BOOST_TEST_REQUIRE(dev.ok(), dev.status().ToString());
  BOOST_TEST(((*dev)->state() == DeviceState::kConnected));
  // The backend's part of the close: Closed once the frontend is Closing.
  auto closing = std::async(std::launch::async, [&] { return (*dev)->close(); });
  fake.WaitFrontend("5");
  BOOST_TEST_REQUIRE(fake.xs->Write(platform::kNoTx, fake.Key(schema::be::kState), "6").ok());
  BOOST_TEST(closing.get().ok());
}

// Refused twice: that is the backend's answer, and open says why.
BOOST_AUTO_TEST_CASE(AHandshakeRefusedTwiceFailsOpenWithTheBackendsError) {
  Host h({1, 2});
  auto r = h.Tool({"attach", "1", "--backend", "2", "--devid", "5", "--size", "64K", "--volume",
                   testing::kVolume});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.out);
  FakeBackend fake(h);
  fake.Publish();
  auto opening = OpenAsync(h);
  fake.Refuse("first refusal");
  fake.Reopen();
  fake.Refuse("ring-page-order 9 is beyond max-ring-page-order 0");
  auto dev = opening.get();
  BOOST_TEST_REQUIRE(!dev.ok());
  BOOST_TEST((dev.status().code() == Code::kUnavailable), dev.status().ToString());
  BOOST_TEST(dev.status().message().find("beyond max-ring-page-order") != std::string::npos,
             dev.status().ToString());
}

// How the fake backend lies about the PERSIST it was sent.
enum class Lie {
  kUnknownId,
  kWrongOperation,
  kUnknownStatus,
  kProducerFarAhead,
  kReadLength,
  kDurableSeqBackwards,
};

// Opens device 5 against a FakeBackend, lets it lie once, and checks the
// device went to its error state (with the error node written) instead of
// crashing or accepting the answer.
void CheckLie(Lie lie, std::string_view expect_in_error) {
  Host h({1, 2});
  auto r = h.Tool({"attach", "1", "--backend", "2", "--devid", "5", "--size", "64K", "--volume",
                   testing::kVolume});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.out);
  FakeBackend fake(h);
  fake.Publish();
  auto opening = std::async(std::launch::async, [&] {
    OpenOptions o;
    o.platform = h.Dom1();
    o.devid = 5;
    o.timeout = std::chrono::seconds(10);
    return Device::Open(o);
  });
  fake.Accept();
  // The first request is the frontend's GET_INFO probe: answer it right.
  vnvramif_request probe = fake.Next();
  BOOST_TEST_REQUIRE(probe.operation == VNVRAMIF_OP_GET_INFO);
  fake.Respond(probe.id, probe.operation, VNVRAMIF_RSP_OKAY, 65536);
  auto dev = opening.get();
  BOOST_TEST_REQUIRE(dev.ok(), dev.status().ToString());
  auto d = std::move(dev).value();

  std::vector<std::byte> buf(100);
  auto calling = std::async(std::launch::async, [&] {
    return lie == Lie::kReadLength ? d->read(0, buf) : d->persist(0, 64);
  });
  vnvramif_request req = fake.Next();
  switch (lie) {
    case Lie::kUnknownId: fake.Respond(req.id + 1000, req.operation, VNVRAMIF_RSP_OKAY, 0); break;
    case Lie::kWrongOperation: fake.Respond(req.id, VNVRAMIF_OP_READ, VNVRAMIF_RSP_OKAY, 0); break;
    case Lie::kUnknownStatus: fake.Respond(req.id, req.operation, 77, 0); break;
    case Lie::kProducerFarAhead:
      fake.back.rsp_prod_pvt += 50;  // 50 answers for one question
      fake.Respond(req.id, req.operation, VNVRAMIF_RSP_OKAY, 0);
      break;
    case Lie::kReadLength:
      fake.Respond(req.id, req.operation, VNVRAMIF_RSP_OKAY, req.length + 1);
      break;
    case Lie::kDurableSeqBackwards:
      // The probe's answer said kSeq was durable; this PERSIST's says less.
      fake.Respond(req.id, req.operation, VNVRAMIF_RSP_OKAY, 0, FakeBackend::kSeq - 1);
      break;
  }
  Status s = calling.get();
  BOOST_TEST((s.code() == Code::kCorruption), s.ToString());
  BOOST_TEST(s.message().find(expect_in_error) != std::string::npos, s.ToString());
  if (lie == Lie::kReadLength) {
    // A wrong length fails that call only; the ring itself stayed sane.
    BOOST_TEST((d->state() == DeviceState::kConnected));
    // Play the backend's part of the Closing dance so close() needs no wait.
    BOOST_TEST_REQUIRE(fake.xs->Write(platform::kNoTx, fake.Key(schema::be::kState), "6").ok());
    BOOST_TEST(d->close().ok());
    return;
  }
  BOOST_TEST((d->state() == DeviceState::kError));
  BOOST_TEST((d->persist(0, 64).code() == Code::kCorruption));
  // Reported where the toolstack looks, and the frontend went Closing.
  auto err = h.xs0->Read(platform::kNoTx, schema::FrontendKey(1, 5, schema::fe::kError));
  BOOST_TEST_REQUIRE(err.ok(), err.status().ToString());
  BOOST_TEST(err->find(expect_in_error) != std::string::npos, *err);
  auto st = h.xs0->Read(platform::kNoTx, schema::FrontendKey(1, 5, schema::fe::kState));
  BOOST_TEST_REQUIRE(st.ok());
  BOOST_TEST(*st == "5");
  BOOST_TEST(d->close().ok());
}

BOOST_AUTO_TEST_CASE(ABackendAnsweringAnUnknownIdPutsTheDeviceInErrorNotACrash) {
  CheckLie(Lie::kUnknownId, "not in flight");
}

BOOST_AUTO_TEST_CASE(ABackendAnsweringWithTheWrongOperationPutsTheDeviceInError) {
  CheckLie(Lie::kWrongOperation, "as operation");
}

BOOST_AUTO_TEST_CASE(ABackendAnsweringWithAnUnknownStatusPutsTheDeviceInError) {
  CheckLie(Lie::kUnknownStatus, "unknown status");
}

BOOST_AUTO_TEST_CASE(ABackendPushingMoreResponsesThanRequestsPutsTheDeviceInError) {
  CheckLie(Lie::kProducerFarAhead, "responses ahead");
}

BOOST_AUTO_TEST_CASE(ABackendMisreportingACopyLengthFailsThatRead) {
  CheckLie(Lie::kReadLength, "bytes moved");
}

BOOST_AUTO_TEST_CASE(ABackendWhoseDurableSequenceGoesBackwardsPutsTheDeviceInError) {
  CheckLie(Lie::kDurableSeqBackwards, "sequence went back");
}

}  // namespace
}  // namespace vnvram
