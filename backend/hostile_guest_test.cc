// Hostile guests against vnvramd, black box on the sim platform (issue 10):
// a guest racing writes into its request slots while the backend reads
// them (double fetch), an event-channel storm, and junk in every xenstore
// key a frontend can write, plus writes and reads where a guest has no
// business. Each time a second guest (the victim) keeps being served with
// its bytes intact, the daemon stays up, and the attacker's device gets
// error responses or is fenced: nothing else.
#define BOOST_TEST_MODULE hostile_guest
#include <array>
#include <atomic>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cstring>
#include <map>
#include <random>
#include <sstream>
#include <thread>

#include "backend/testing/vnvramd_harness.h"
#include "backend/testing/vnvramd_host.h"
#include "common/clock.h"
#include "common/parse.h"
#include "common/shared_copy.h"

namespace vnvram::backend::testing {
namespace {

namespace be = schema::be;
namespace fe = schema::fe;
using platform::GrantRef;

// The victim: guest 2's device, its region filled and persisted.
std::unique_ptr<TestFrontend> Victim(Host& h) {
  auto v = h.AttachConnected(h.Spec(2, 0, 2, 256 << 10));
  Fill(v->region(), 77);
  auto c = v->Persist(0, v->region().size());
  BOOST_TEST_REQUIRE(c.ok(), c.status().ToString());
  BOOST_TEST_REQUIRE(c->status == VNVRAMIF_RSP_OKAY);
  return v;
}

void ExpectVictimIntact(Host& h, TestFrontend& v) {
  BOOST_TEST(h.daemon->Signal(0).ok(), "vnvramd died\n" << h.Log());
  BOOST_TEST(Holds(v.region(), 77), "the victim's region changed");
  ExpectServing(v);
}

BOOST_AUTO_TEST_CASE(GuestRewritingItsRequestsWhileTheBackendReadsThemGetsErrorsOnly) {
  Host h;
  auto victim = Victim(h);
  auto f = h.AttachConnected(h.Spec(1, 0, 1, 256 << 10));
  auto src = f->sharer().Share(0, 2, /*writable=*/false);
  auto dst = f->sharer().Share(0, 1, /*writable=*/true);
  BOOST_TEST_REQUIRE(src.ok());
  BOOST_TEST_REQUIRE(dst.ok());

  // The racer rewrites offset, length and the grant refs (words 2..7) of
  // every request slot with random values, one 8-byte store at a time,
  // while requests are in flight. The test drives the ring by hand: a
  // request is stored whole, pushed and kicked, then only the answer's id
  // and status (words 0, 1, which the racer never touches) are read once
  // rsp_prod moves. (The racer also scribbles over the answers' words 2
  // and 3, which is why libvnvram's ring client is not used here.)
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> stores{0};
  vnvramif_sring_t* sring = f->sring();
  const RING_IDX slots = VNVRAMIF_RING_SIZE(1);
  std::thread racer([&] {
    std::mt19937_64 rng(42);
    while (!stop.load(std::memory_order_relaxed)) {
      auto* req = reinterpret_cast<uint64_t*>(&sring->ring[rng() % slots].req);
      const uint64_t r = rng();
      // Small offsets and lengths as often as wild ones.
      const uint64_t v = (r & 1) ? (r >> 1) : ((r >> 1) & 0x7ffff);
      __atomic_store_n(req + 2 + rng() % 6, v, __ATOMIC_RELAXED);
      stores.fetch_add(1, std::memory_order_relaxed);
    }
  });

  std::map<int, int> statuses;
  std::string broke;
  std::mt19937_64 rng(7);
  RING_IDX prod = __atomic_load_n(&sring->req_prod, __ATOMIC_RELAXED);
  for (int i = 0; i < 3000 && broke.empty(); ++i) {
    vnvramif_request r{};
    r.id = 1000 + static_cast<uint64_t>(i);
    switch (i % 4) {
      case 0:
        r.operation = VNVRAMIF_OP_PERSIST;
        r.offset = rng() % (200 << 10);
        r.length = 4096;
        break;
      case 1:
        r.operation = VNVRAMIF_OP_WRITE;
        r.offset = 8192;
        r.length = 6000;
        r.nr_segments = 2;
        r.page_offset = 100;
        r.gref[0] = (*src)->refs()[0];
        r.gref[1] = (*src)->refs()[1];
        break;
      case 2:
        r.operation = VNVRAMIF_OP_READ;
        r.offset = 4096;
        r.length = 4096;
        r.nr_segments = 1;
        r.gref[0] = (*dst)->refs()[0];
        break;
      default: r.operation = VNVRAMIF_OP_GET_INFO; break;
    }
    StoreToShared(&sring->ring[prod % slots].req, r);
    __atomic_store_n(&sring->rsp_event, prod + 1, __ATOMIC_RELAXED);
    __atomic_store_n(&sring->req_prod, prod + 1, __ATOMIC_RELEASE);
    f->Kick();
    // Wait (with a deadline) for the answer's index: the event is the
    // backend's store to shared memory.
    const Deadline d(SystemClock::Instance(), std::chrono::seconds(10));
    while (__atomic_load_n(&sring->rsp_prod, __ATOMIC_ACQUIRE) != prod + 1 && !d.Expired()) {
      std::this_thread::yield();
    }
    if (__atomic_load_n(&sring->rsp_prod, __ATOMIC_ACQUIRE) != prod + 1) {
      broke = "no answer to request " + std::to_string(i) + " (backend state " +
              h.Read(f->BeKey(be::kState)) + ")";
      break;
    }
    const auto* w = reinterpret_cast<const uint64_t*>(&sring->ring[prod % slots].rsp);
    const uint64_t id = __atomic_load_n(w, __ATOMIC_RELAXED);
    const uint64_t w1 = __atomic_load_n(w + 1, __ATOMIC_RELAXED);
    const auto status = static_cast<int16_t>((w1 >> 16) & 0xffff);
    BOOST_TEST_REQUIRE(id == r.id, "answer " << id << " to request " << r.id);
    BOOST_TEST_REQUIRE(static_cast<uint8_t>(w1 & 0xff) == r.operation);
    ++statuses[status];
    ++prod;
  }
  stop = true;
  racer.join();

  std::ostringstream seen;
  for (const auto& [s, n] : statuses) seen << " status " << s << ": " << n;
  BOOST_TEST_MESSAGE("racing guest: " << stores.load() << " racing stores;" << seen.str()
                                      << (broke.empty() ? "" : "; then " + broke));
  BOOST_TEST(stores.load() > 0u);
  // Every answer is a status of the protocol.
  for (const auto& [s, n] : statuses) {
    BOOST_TEST(
        (s == VNVRAMIF_RSP_OKAY || s == VNVRAMIF_RSP_ERANGE || s == VNVRAMIF_RSP_EINVAL ||
         s == VNVRAMIF_RSP_EACCES || s == VNVRAMIF_RSP_ERROR || s == VNVRAMIF_RSP_EOPNOTSUPP),
        "unexpected status " << s);
  }
  if (!broke.empty()) {
    // The only other outcome allowed: that device fenced.
    auto st = f->WaitBackendState(schema::XenbusState::kClosing);
    BOOST_TEST(st.ok(), broke << ", and the device is not fenced");
  } else {
    BOOST_TEST(statuses[VNVRAMIF_RSP_OKAY] > 0, "nothing got through");
    BOOST_TEST(h.Read(f->BeKey(be::kState)) == "4", "still Connected");
  }
  ExpectVictimIntact(h, *victim);
}

BOOST_AUTO_TEST_CASE(EventChannelStormDoesNotStarveOtherGuests) {
  Host h;
  auto victim = Victim(h);
  auto f = h.AttachConnected(h.Spec(1, 0, 1, 64 << 10));
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> kicks{0};
  std::thread storm([&] {
    while (!stop.load(std::memory_order_relaxed)) {
      f->Kick();
      kicks.fetch_add(1, std::memory_order_relaxed);
    }
  });
  // The victim persists for two seconds of storm; each persist is a ring
  // round trip through the same daemon.
  const Deadline d(SystemClock::Instance(), std::chrono::seconds(2));
  uint64_t persists = 0, worst_us = 0;
  while (!d.Expired()) {
    const Nanos t0 = SystemClock::Instance().Now();
    auto c = victim->Persist((persists % 64) * 4096, 4096);
    BOOST_TEST_REQUIRE(c.ok(), c.status().ToString());
    BOOST_TEST_REQUIRE(c->status == VNVRAMIF_RSP_OKAY);
    worst_us = std::max<uint64_t>(worst_us, (SystemClock::Instance().Now() - t0).count() / 1000);
    ++persists;
  }
  stop = true;
  storm.join();
  BOOST_TEST_MESSAGE("event-channel storm: " << kicks.load() << " notifications; the victim made "
                                             << persists << " persists, the slowest " << worst_us
                                             << " us");
  BOOST_TEST(kicks.load() > 1000u);
  BOOST_TEST(persists > 0u);
  // A storm is not an error: the stormer's own device still serves.
  ExpectServing(*f);
  ExpectVictimIntact(h, *victim);
}

BOOST_AUTO_TEST_CASE(JunkInTheGuestsXenstoreKeysIsHandledPerDevice) {
  Host h;
  auto victim = Victim(h);
  // Every key a frontend writes that vnvramd reads, with junk: the device
  // that gets it is fenced or the value ignored, with a log line.
  struct Junk {
    std::string_view key;
    std::string value;
  };
  const std::vector<Junk> junk = {
      {fe::kActivate, "-1"},       {fe::kActivate, "18446744073709551616"},
      {fe::kActivate, "1e9"},      {fe::kActivate, std::string(4000, '9')},
      {fe::kActivateForce, "yes"}, {fe::kState, "99"},
      {fe::kState, "abc"},         {fe::kState, std::string("4\0junk", 6)},
  };
  DevId dev = 10;
  for (const Junk& j : junk) {
    BOOST_TEST_CONTEXT(j.key << "=" << j.value.substr(0, 40)) {
      const DevId d = dev++;
      auto f = h.AttachConnected(h.Spec(1, d, static_cast<uint8_t>(d), 64 << 10));
      if (Status w = f->xs().Write(platform::kNoTx, f->FeKey(j.key), j.value); !w.ok()) {
        // The store's own limits refused it: vnvramd never sees it.
        BOOST_TEST_MESSAGE(j.key << " junk refused by the store: " << w.ToString());
        continue;
      }
      // Then a valid request: served (the junk was ignored) or refused
      // because the device was fenced. Either way the daemon lives.
      auto c = f->Persist(0, 4096);
      const bool served = c.ok() && c->status == VNVRAMIF_RSP_OKAY;
      if (!served) {
        auto st = f->WaitBackendState(schema::XenbusState::kClosing);
        BOOST_TEST(st.ok(), "neither served nor fenced: " << st.status().ToString());
      }
      BOOST_TEST_MESSAGE(j.key << " junk -> " << (served ? "ignored" : "fenced"));
      ExpectVictimIntact(h, *victim);
    }
  }

  // Many keys and big values under its own device directory: bounded by
  // the store's quotas (C xenstored's: 1000 nodes per domain, 2048-byte
  // entries), ignored by vnvramd.
  auto f = h.AttachConnected(h.Spec(1, 40, 40, 64 << 10));
  int written = 0;
  for (int i = 0; i < 300; ++i) {
    if (f->xs()
            .Write(platform::kNoTx, f->FeKey("junk-" + std::to_string(i)), std::string(1500, 'x'))
            .ok()) {
      ++written;
    }
  }
  BOOST_TEST_MESSAGE("junk keys accepted by the store: " << written << " of 300");
  BOOST_TEST(written > 0);
  ExpectServing(*f);

  // Where a guest has no business: its backend's directory, another
  // guest's frontend directory, the daemon's own tree. All refused by the
  // store, nothing changes.
  const std::string victim_be = victim->BeKey(be::kState);
  const std::string victim_fe = victim->FeKey(fe::kState);
  for (const std::string& path :
       {f->BeKey(be::kState), f->BeKey(be::kSize), victim_be, victim_fe,
        schema::DaemonKey(0, schema::daemon::kHostId), victim->FeKey(fe::kRingRef)}) {
    BOOST_TEST_CONTEXT(path) {
      BOOST_TEST(!f->xs().Write(platform::kNoTx, path, "6").ok());
      BOOST_TEST(!f->xs().Remove(platform::kNoTx, path).ok());
    }
  }
  BOOST_TEST(!f->xs().Read(platform::kNoTx, victim_fe).ok(), "guest 1 read guest 2's node");
  BOOST_TEST(!f->xs().Read(platform::kNoTx, victim->FeKey(fe::kRingRef)).ok());
  ExpectVictimIntact(h, *victim);
}

// No cross-guest access to memory: the grants dom0 made to the victim
// (its page directory and region pages) cannot be mapped by another guest
// that learned their numbers, read-only or writable; the victim itself can.
BOOST_AUTO_TEST_CASE(AGuestCannotMapAnotherGuestsRegion) {
  Host h;
  auto victim = Victim(h);
  auto dir = ParseU32(h.Read(victim->BeKey(be::PageDirRef(0))), "the directory's ref");
  BOOST_TEST_REQUIRE(dir.ok(), dir.status().ToString());
  auto attacker = platform::OpenSimPlatform(platform::SimOptions{h.xsd->socket_dir(), 1});
  BOOST_TEST_REQUIRE(attacker.ok(), attacker.status().ToString());
  auto mapper = (*attacker)->OpenGrantMapper();
  BOOST_TEST_REQUIRE(mapper.ok(), mapper.status().ToString());
  // Guess at the refs around the directory's, as a probing guest would.
  int refused = 0;
  for (GrantRef r = *dir > 4 ? *dir - 4 : 0; r < *dir + 64; ++r) {
    for (bool writable : {false, true}) {
      const std::array<GrantRef, 1> one{r};
      auto m = (*mapper)->Map(0, one, writable);
      BOOST_TEST(!m.ok(), "guest 1 mapped dom0's grant " << r << " (writable " << writable << ")");
      ++refused;
    }
  }
  BOOST_TEST_MESSAGE(refused << " mappings of another guest's grants refused");
  // Positive control: the victim maps its own directory.
  auto own = platform::OpenSimPlatform(platform::SimOptions{h.xsd->socket_dir(), 2});
  BOOST_TEST_REQUIRE(own.ok());
  auto own_mapper = (*own)->OpenGrantMapper();
  BOOST_TEST_REQUIRE(own_mapper.ok());
  const std::array<GrantRef, 1> d{*dir};
  BOOST_TEST((*own_mapper)->Map(0, d, false).ok());
  ExpectVictimIntact(h, *victim);
}

}  // namespace
}  // namespace vnvram::backend::testing
