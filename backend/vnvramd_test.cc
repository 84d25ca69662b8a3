// Black-box tests of vnvramd on the sim platform: a real sim xenstored, a
// real vnvramd process, and test frontends in this process acting as guest
// domains through the platform API. Every wait is on an event with a
// deadline.
#define BOOST_TEST_MODULE vnvramd
#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "backend/testing/vnvramd_harness.h"
#include "backend/testing/vnvramd_host.h"
#include "backend/vault_file.h"
#include "common/clock.h"
#include "platform/sim/xenstored/testing/xenstored_process.h"
#include "xenstore-schema/validator.h"
#include "xenstore-schema/xenstore_tree_source.h"

namespace vnvram::backend::testing {
namespace {

namespace be = schema::be;
namespace fe = schema::fe;
namespace dk = schema::daemon;
using schema::XenbusState;

// The live tree passes the schema validator.
void ExpectTreeValid(Host& h) {
  auto src = schema::XenStoreTreeSource::Open(*h.xs, /*snapshot=*/true);
  BOOST_TEST_REQUIRE(src.ok(), src.status().ToString());
  schema::Validator v(schema::BuiltinSchema());
  auto findings = v.Check(**src);
  BOOST_TEST_REQUIRE(findings.ok(), findings.status().ToString());
  BOOST_TEST(findings->empty(), schema::FormatFindingsText(*findings));
}

BOOST_AUTO_TEST_CASE(InitWaitPublishesFeaturesAndTheTreeValidates) {
  Host h;
  // Two directory pages need more than gntalloc's default 1024 pages.
  h.daemon->Kill();
  h.daemon.reset();
  h.StartDaemon({}, {"VNVRAM_SIM_GNTALLOC_LIMIT=4096"});
  auto d = h.Spec(1, 0, 1, 8 << 20);
  auto f = h.Attach(d);
  BOOST_TEST(h.Read(f->BeKey(be::kMaxRingPageOrder)) == "4");
  BOOST_TEST(h.Read(f->BeKey(be::kRegionSize)) == std::to_string(8 << 20));
  BOOST_TEST(h.Read(f->BeKey(be::kRegionPages)) == "2048");
  BOOST_TEST(h.Read(f->BeKey(be::kPageDirRefs)) == "2");
  BOOST_TEST(h.Read(f->BeKey(be::PageDirRef(0))).find('<') == std::string::npos);
  BOOST_TEST(h.Read(f->BeKey(be::PageDirRef(1))).find('<') == std::string::npos);
  BOOST_TEST(h.Read(f->BeKey(be::kFeaturePersist)) == "1");
  BOOST_TEST(h.Read(f->BeKey(be::kFeatureFlush)) == "1");
  BOOST_TEST(h.Read(f->BeKey(be::kFeatureBarrier)) == "1");
  BOOST_TEST(h.Read(f->BeKey(be::kHotplugStatus)) == std::string(be::kHotplugStatusConnected));
  BOOST_TEST(h.Read(schema::DaemonKey(0, dk::kStatus)) == std::string(dk::kStatusRunning));
  BOOST_TEST(h.Read(schema::DaemonKey(0, dk::kPid)) == std::to_string(h.daemon->pid()));
  // The frontend, as domain 1, can read and map what was published.
  BOOST_TEST_REQUIRE(f->MapRegion().ok());
  BOOST_TEST(f->region().size() == size_t{8} << 20);

  ExpectTreeValid(h);
}

BOOST_AUTO_TEST_CASE(HandshakeToConnectedAndPersistOverTheRing) {
  Host h;
  auto f = h.AttachConnected(h.Spec(1, 0, 1));
  Fill(f->region().subspan(8192, 4096), 7);
  auto c = f->Persist(8192, 4096);
  BOOST_TEST_REQUIRE(c.ok(), c.status().ToString());
  BOOST_TEST(c->status == VNVRAMIF_RSP_OKAY);
  BOOST_TEST(c->durable_seq >= 1u);
  vnvramif_request info{};
  info.operation = VNVRAMIF_OP_GET_INFO;
  auto i = f->Call(info);
  BOOST_TEST_REQUIRE(i.ok(), i.status().ToString());
  BOOST_TEST(i->value == uint64_t{1} << 20);
  // Statistics appear (published at most once a second, on change).
  auto req = WaitForValue(*h.xs, f->BeKey(be::kStatRequests), "2");
  BOOST_TEST(req.ok(), req.status().ToString());
  auto seq =
      WaitForValue(*h.xs, f->BeKey(be::kStatDurableSequence), std::to_string(c->durable_seq));
  BOOST_TEST(seq.ok(), seq.status().ToString());
  BOOST_TEST(h.Read(f->BeKey(be::kStatBytes)) == "4096");
  BOOST_TEST(h.Read(f->BeKey(be::kStatPersistLatencyP50Ns)) != "0");
  BOOST_TEST(h.Read(f->BeKey(be::kStatPersistLatencyMaxNs)) != "0");
  ExpectTreeValid(h);

  // A multi-page ring on a second device works too.
  auto d2 = h.Spec(2, 0, 2);
  BOOST_TEST_REQUIRE(h.toolstack->Attach(d2).ok());
  auto f2 = TestFrontend::Open(h.xsd->socket_dir(), d2);
  BOOST_TEST_REQUIRE(f2.ok());
  BOOST_TEST_REQUIRE((*f2)->WaitBackendState(XenbusState::kInitWait).ok());
  BOOST_TEST_REQUIRE((*f2)->Connect(2).ok(), h.Log());
  ExpectServing(**f2);
}

BOOST_AUTO_TEST_CASE(CopyModeWriteAndReadThroughGrantedPages) {
  Host h;
  auto f = h.AttachConnected(h.Spec(1, 0, 1, 64 << 10));
  BOOST_TEST(h.Read(f->BeKey(be::kFeatureCopyMode)) == "1");
  auto src = f->sharer().Share(0, 2, /*writable=*/false);
  BOOST_TEST_REQUIRE(src.ok(), src.status().ToString());
  Fill((*src)->data(), 33);
  vnvramif_request w{};
  w.operation = VNVRAMIF_OP_WRITE;
  w.offset = 8192;
  w.length = 6000;
  w.nr_segments = 2;
  w.page_offset = 100;
  w.gref[0] = (*src)->refs()[0];
  w.gref[1] = (*src)->refs()[1];
  auto c = f->Call(w);
  BOOST_TEST_REQUIRE(c.ok(), c.status().ToString());
  BOOST_TEST(c->status == VNVRAMIF_RSP_OKAY);
  BOOST_TEST(c->value == 6000u);
  BOOST_TEST(std::memcmp(f->region().data() + 8192, (*src)->data().data() + 100, 6000) == 0);

  auto dst = f->sharer().Share(0, 1, /*writable=*/true);
  BOOST_TEST_REQUIRE(dst.ok());
  vnvramif_request r{};
  r.operation = VNVRAMIF_OP_READ;
  r.offset = 8192;
  r.length = 4096;
  r.nr_segments = 1;
  r.gref[0] = (*dst)->refs()[0];
  c = f->Call(r);
  BOOST_TEST_REQUIRE(c.ok(), c.status().ToString());
  BOOST_TEST(c->status == VNVRAMIF_RSP_OKAY);
  BOOST_TEST(std::memcmp((*dst)->data().data(), f->region().data() + 8192, 4096) == 0);

  // A page granted read-only cannot be the target of a READ.
  r.gref[0] = (*src)->refs()[0];
  c = f->Call(r);
  BOOST_TEST_REQUIRE(c.ok());
  BOOST_TEST(c->status == VNVRAMIF_RSP_EACCES);
}

BOOST_AUTO_TEST_CASE(DriverDomainBackendServesAGuest) {
  Host h;
  h.daemon->Kill();
  h.daemon.reset();
  h.StartDaemon({}, {}, /*self=*/3);
  auto d = h.Spec(1, 0, 1, 64 << 10);
  d.backend = 3;
  auto f = h.AttachConnected(d);
  Fill(f->region().first(4096), 44);
  ExpectServing(*f);
  BOOST_TEST(h.Read(schema::DaemonKey(3, dk::kStatus)) == std::string(dk::kStatusRunning));
}

BOOST_AUTO_TEST_CASE(HostileTransportKeysFenceOnlyThatDevice) {
  Host h;
  auto good = h.AttachConnected(h.Spec(2, 0, 2));

  struct Case {
    const char* what;
    TransportOverrides o;
    uint32_t order = 0;
  };
  std::vector<Case> cases;
  auto add = [&](const char* what, auto set, uint32_t order = 0) {
    Case c{what, {}, order};
    set(c.o);
    cases.push_back(c);
  };
  add("ring-ref not a number", [](auto& o) { o.ring_ref = "abc"; });
  add("ring-ref negative", [](auto& o) { o.ring_ref = "-1"; });
  add("ring-ref overflows 32 bits", [](auto& o) { o.ring_ref = "4294967296"; });
  add("ring-ref with trailing space", [](auto& o) { o.ring_ref = "9 "; });
  add("ring-ref not in use", [](auto& o) { o.ring_ref = "300000"; });
  add("event-channel 0", [](auto& o) { o.event_channel = "0"; });
  add("event-channel garbage", [](auto& o) { o.event_channel = "0x10"; });
  add("event-channel not offered to us", [](auto& o) { o.event_channel = "4000"; });
  add("protocol unknown", [](auto& o) { o.protocol = "sparc-abi"; });
  add("protocol with NUL", [](auto& o) { o.protocol = std::string("x86_64-abi\0x", 12); });
  add(
      "ring-page-order above max", [](auto& o) { o.ring_page_order = "5"; }, 1);
  add(
      "ring-page-order garbage", [](auto& o) { o.ring_page_order = "1x"; }, 1);
  add(
      "ring-page-order huge", [](auto& o) { o.ring_page_order = "99999999999999999999"; }, 1);

  // Fenced devices keep their (small) regions until they are removed.
  DevId dev = 0;
  for (const Case& c : cases) {
    BOOST_TEST_CONTEXT(c.what) {
      const DevId this_dev = dev++;
      auto f = h.Attach(h.Spec(1, this_dev, static_cast<uint8_t>(10 + this_dev), 64 << 10));
      BOOST_TEST_REQUIRE(f->Publish(c.order, c.o).ok());
      ExpectFenced(h, *f, c.what);
      ExpectServing(*good);
    }
  }

  // A grant ref the frontend granted to another domain (3), not to us.
  BOOST_TEST_CONTEXT("grant ref of another domain") {
    auto f = h.Attach(h.Spec(1, dev++, 40, 64 << 10));
    auto other = f->sharer().Share(3, 1, true);
    BOOST_TEST_REQUIRE(other.ok());
    TransportOverrides o;
    o.ring_ref = std::to_string((*other)->refs()[0]);
    BOOST_TEST_REQUIRE(f->Publish(0, o).ok());
    ExpectFenced(h, *f, "grant ref of another domain");
    ExpectServing(*good);
  }
  // An unsupported frontend state.
  BOOST_TEST_CONTEXT("frontend state Reconfiguring") {
    auto f = h.Attach(h.Spec(1, dev++, 41, 64 << 10));
    BOOST_TEST_REQUIRE(f->SetState(XenbusState::kReconfiguring).ok());
    ExpectFenced(h, *f, "state 7");
    ExpectServing(*good);
  }
  BOOST_TEST(h.daemon->Signal(0).ok());
}

BOOST_AUTO_TEST_CASE(RegionBeyondTheGrantLimitIsAFatalDeviceError) {
  Host h;
  auto good = h.AttachConnected(h.Spec(2, 0, 2));
  auto d = h.Spec(1, 0, 1, 8 << 20);  // 2048 pages > the default 1024
  BOOST_TEST_REQUIRE(h.toolstack->Attach(d).ok());
  auto f = TestFrontend::Open(h.xsd->socket_dir(), d);
  BOOST_TEST_REQUIRE(f.ok());
  ExpectFenced(h, **f, "region beyond the gntalloc limit");
  BOOST_TEST(h.Read((*f)->BeKey(be::kError)).find("limit") != std::string::npos);
  BOOST_TEST(h.Read((*f)->BeKey(be::kHotplugStatus)) == std::string(be::kHotplugStatusError));
  ExpectServing(*good);
}

BOOST_AUTO_TEST_CASE(BadRequestsGetErrorsAndARunawayRingIsFenced) {
  Host h;
  auto good = h.AttachConnected(h.Spec(2, 0, 2));
  auto f = h.AttachConnected(h.Spec(1, 0, 1));

  vnvramif_request r{};
  r.operation = VNVRAMIF_OP_PERSIST;
  r.offset = (1 << 20) - 10;
  r.length = 11;
  auto c = f->Call(r);
  BOOST_TEST_REQUIRE(c.ok(), c.status().ToString());
  BOOST_TEST(c->status == VNVRAMIF_RSP_ERANGE);

  r.offset = 4096;
  r.length = ~uint64_t{0} - 100;  // offset + length wraps
  c = f->Call(r);
  BOOST_TEST_REQUIRE(c.ok());
  BOOST_TEST(c->status == VNVRAMIF_RSP_ERANGE);

  vnvramif_request u{};
  u.operation = 200;
  c = f->Call(u);
  BOOST_TEST_REQUIRE(c.ok());
  BOOST_TEST(c->status == VNVRAMIF_RSP_EOPNOTSUPP);

  // Still connected and serving after the bad requests, which count as
  // errors in the statistics.
  BOOST_TEST(h.Read(f->BeKey(be::kState)) == "4");
  ExpectServing(*f);
  auto errors = WaitForValue(*h.xs, f->BeKey(be::kStatErrors), "3");
  BOOST_TEST(errors.ok(), errors.status().ToString());

  // The producer index jumps past the ring: that ring is fenced.
  f->sring()->req_prod += 10000;
  f->Kick();
  ExpectFenced(h, *f, "req_prod beyond the ring");
  BOOST_TEST(h.Read(f->BeKey(be::kError)).find("fenced") != std::string::npos);
  ExpectServing(*good);
}

BOOST_AUTO_TEST_CASE(FrontendReinitialiseKeepsTheRegion) {
  Host h;
  auto d = h.Spec(1, 0, 1);
  auto f = h.AttachConnected(d);
  Fill(f->region().first(4096), 3);
  BOOST_TEST_REQUIRE(f->Persist(0, 4096).ok());
  const std::string dir_ref = h.Read(f->BeKey(be::PageDirRef(0)));

  // The guest "crashes" and comes back: Initialising, then a new ring.
  f->DropTransport();
  BOOST_TEST_REQUIRE(f->SetState(XenbusState::kInitialising).ok());
  BOOST_TEST_REQUIRE(f->WaitBackendState(XenbusState::kInitWait).ok(), h.Log());
  BOOST_TEST(h.Read(f->BeKey(be::PageDirRef(0))) == dir_ref);
  BOOST_TEST_REQUIRE(f->Connect().ok(), h.Log());
  BOOST_TEST(Holds(f->region().first(4096), 3));
  ExpectServing(*f);

  // Re-initialised straight to Initialised with new keys: reconnects.
  BOOST_TEST_REQUIRE(f->Publish().ok());
  BOOST_TEST_REQUIRE(f->WaitBackendState(XenbusState::kConnected).ok());
  BOOST_TEST_REQUIRE(f->MapRegion().ok());
  ExpectServing(*f);
}

BOOST_AUTO_TEST_CASE(FrontendCloseThenReattachReusesTheRegion) {
  Host h;
  auto f = h.AttachConnected(h.Spec(1, 0, 1, 64 << 10));
  Fill(f->region().first(4096), 17);
  BOOST_TEST_REQUIRE(f->Persist(0, 4096).ok());
  BOOST_TEST_REQUIRE(f->SetState(XenbusState::kClosing).ok());
  BOOST_TEST_REQUIRE(f->WaitBackendState(XenbusState::kClosing).ok(), h.Log());
  f->DropTransport();
  BOOST_TEST_REQUIRE(f->SetState(XenbusState::kClosed).ok());
  BOOST_TEST_REQUIRE(f->WaitBackendState(XenbusState::kClosed).ok(), h.Log());
  // Closed -> InitWait when the frontend starts again (online still 1).
  BOOST_TEST_REQUIRE(f->SetState(XenbusState::kInitialising).ok());
  BOOST_TEST_REQUIRE(f->WaitBackendState(XenbusState::kInitWait).ok(), h.Log());
  BOOST_TEST_REQUIRE(f->Connect().ok(), h.Log());
  BOOST_TEST(Holds(f->region().first(4096), 17));
  ExpectServing(*f);
}

BOOST_AUTO_TEST_CASE(BackendRestartWithVaultKeepsTheBytes) {
  Host h;
  auto d = h.Spec(1, 0, 1, 64 << 10);
  auto f = h.AttachConnected(d);
  Fill(f->region(), 9);
  auto c = f->Persist(0, f->region().size());
  BOOST_TEST_REQUIRE(c.ok());
  const uint64_t seq = c->durable_seq;

  // SIGTERM vaults and exits 0.
  auto rc = h.daemon->Stop();
  BOOST_TEST_REQUIRE(rc.ok());
  BOOST_TEST(*rc == 0, h.Log());
  h.daemon.reset();
  BOOST_TEST(std::filesystem::exists(VaultPath(h.vault, d.volume)));
  BOOST_TEST(h.Read(schema::DaemonKey(0, dk::kStatus)) == std::string(dk::kStatusStopping));

  // The frontend lets go of the dead backend's memory (as libvnvram does
  // when it sees the backend restart), then the new instance republishes.
  f->DropTransport();
  BOOST_TEST_REQUIRE(f->SetState(XenbusState::kInitialising).ok());
  h.StartDaemon();
  BOOST_TEST_REQUIRE(f->WaitBackendState(XenbusState::kInitWait).ok(), h.Log());
  BOOST_TEST_REQUIRE(f->Connect().ok(), h.Log());
  BOOST_TEST(Holds(f->region(), 9));
  auto c2 = f->Persist(0, 64);
  BOOST_TEST_REQUIRE(c2.ok());
  BOOST_TEST(c2->durable_seq > seq);
}

BOOST_AUTO_TEST_CASE(KilledBackendRestartCleansUpItsStaleKeys) {
  Host h;
  auto f = h.AttachConnected(h.Spec(1, 0, 1, 64 << 10));
  ExpectServing(*f);
  BOOST_TEST_REQUIRE(WaitForValue(*h.xs, f->BeKey(be::kStatRequests), "1").ok());
  const std::string old_ref = h.Read(f->BeKey(be::PageDirRef(0)));
  // A crash: no vault, no state change, stale keys left behind.
  h.daemon->Kill();
  h.daemon.reset();
  BOOST_TEST(h.Read(f->BeKey(be::kState)) == "4");
  h.StartDaemon();
  BOOST_TEST_REQUIRE(f->WaitBackendState(XenbusState::kInitWait).ok(), h.Log());
  BOOST_TEST(!h.xs->Directory(platform::kNoTx, f->BeKey(be::kStatisticsDir)).ok());
  BOOST_TEST(h.Read(f->BeKey(be::PageDirRef(0))) != old_ref);
  // The frontend notices InitWait, starts over and is served again.
  f->DropTransport();
  BOOST_TEST_REQUIRE(f->SetState(XenbusState::kInitialising).ok());
  BOOST_TEST_REQUIRE(f->Connect().ok(), h.Log());
  ExpectServing(*f);
}

// A frontend whose Initialised answers an earlier instance's publication
// (it mapped the grants of a vnvramd that died during its handshake) is not
// connected by the next instance: the guest's stores would go to pages
// nobody serves, and its persists would make the new region's bytes, not
// its own, durable. Echoing the new publication's handshake connects it.
BOOST_AUTO_TEST_CASE(AnInitialisedForAnEarlierInstancesRegionIsNotConnected) {
  Host h;
  auto f = h.Attach(h.Spec(1, 0, 1, 64 << 10));
  const std::string first = h.Read(f->BeKey(be::kHandshake));
  BOOST_TEST_REQUIRE(ParseU64(first).ok(), first);
  // The instance dies; the frontend answers the publication it read.
  h.daemon->Kill();
  h.daemon.reset();
  BOOST_TEST_REQUIRE(f->xs().Write(platform::kNoTx, f->FeKey(fe::kBackendHandshake), first).ok());
  BOOST_TEST_REQUIRE(f->Publish().ok());
  // The new instance takes the device over before its ready byte: it
  // publishes again and handles the frontend's Initialised in that pass.
  h.StartDaemon();
  BOOST_TEST_REQUIRE(f->WaitBackendState(XenbusState::kInitWait).ok(), h.Log());
  const std::string second = h.Read(f->BeKey(be::kHandshake));
  BOOST_TEST(second != first);
  // It says why it waits, and waits.
  BOOST_TEST_REQUIRE(h.Log().find("answers another publication") != std::string::npos, h.Log());
  BOOST_TEST(h.Read(f->BeKey(be::kState)) == schema::XenbusStateValue(XenbusState::kInitWait));
  // The frontend starts over as libvnvram does: Initialising, then the new
  // publication's region and an Initialised that echoes it. Served.
  BOOST_TEST_REQUIRE(f->SetState(XenbusState::kInitialising).ok());
  BOOST_TEST_REQUIRE(f->xs().Write(platform::kNoTx, f->FeKey(fe::kBackendHandshake), second).ok());
  Status c = f->Connect();
  BOOST_TEST_REQUIRE(c.ok(), c.ToString() << "\n" << h.Log());
  ExpectServing(*f);
}

BOOST_AUTO_TEST_CASE(VaultRequestAndACorruptVaultIsNotUsed) {
  Host h;
  auto d = h.Spec(1, 0, 1, 64 << 10);
  auto f = h.AttachConnected(d);
  Fill(f->region(), 5);
  BOOST_TEST_REQUIRE(f->Persist(0, 4096).ok());
  BOOST_TEST_REQUIRE(
      h.xs->Write(platform::kNoTx, schema::DaemonKey(0, dk::kVaultRequest), "7").ok());
  auto done = WaitForValue(*h.xs, schema::DaemonKey(0, dk::kVaultCompleted), "7");
  BOOST_TEST_REQUIRE(done.ok(), done.status().ToString() << h.Log());
  BOOST_TEST(h.Read(schema::DaemonKey(0, dk::kVaultResult)) == std::string(dk::kVaultResultOk));
  const std::string path = VaultPath(h.vault, d.volume);
  {
    std::vector<std::byte> buf(64 << 10);
    auto hdr = ReadVaultHeader(h.vault, d.volume, 1 << 30);
    BOOST_TEST_REQUIRE(hdr.ok(), hdr.status().ToString());
    BOOST_TEST_REQUIRE(ReadVaultData(h.vault, *hdr, buf).ok());
    BOOST_TEST(Holds(buf, 5));
  }

  // Kill the daemon (no final vault), flip one data byte, restart: the
  // device reports the corrupt vault and is not served with wrong bytes.
  h.daemon->Kill();
  h.daemon.reset();
  {
    std::fstream io(path, std::ios::in | std::ios::out | std::ios::binary);
    io.seekp(kVaultHeaderSize + 100);
    io.put('\x55' ^ static_cast<char>((100 * 31 + 5) & 0xFF));
  }
  f->DropTransport();
  BOOST_TEST_REQUIRE(f->SetState(XenbusState::kInitialising).ok());
  h.StartDaemon();
  ExpectFenced(h, *f, "corrupt vault");
  BOOST_TEST(h.Read(f->BeKey(be::kError)).find("corrupt") != std::string::npos);
  BOOST_TEST(h.Read(f->BeKey(be::kHotplugStatus)) == std::string(be::kHotplugStatusError));
}

// Watches a directory for a file renamed into place (the vault's atomic
// rename): an event, not a poll.
class RenameWatch {
 public:
  explicit RenameWatch(const std::string& dir) {
    fd_ = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (fd_ >= 0) wd_ = ::inotify_add_watch(fd_, dir.c_str(), IN_MOVED_TO);
  }
  ~RenameWatch() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool ok() const { return fd_ >= 0 && wd_ >= 0; }
  // True when `name` was renamed into the directory before the deadline.
  bool Wait(const std::string& name, milliseconds deadline = kWait) {
    const Deadline d(SystemClock::Instance(), deadline);
    while (!d.Expired()) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, d.RemainingMillisForPoll()) <= 0) continue;
      alignas(inotify_event) char buf[4096];
      const ssize_t n = ::read(fd_, buf, sizeof(buf));
      for (ssize_t off = 0; off < n;) {
        const auto* ev = reinterpret_cast<const inotify_event*>(buf + off);
        if (ev->len > 0 && name == ev->name) return true;
        off += static_cast<ssize_t>(sizeof(inotify_event) + ev->len);
      }
    }
    return false;
  }

 private:
  int fd_ = -1;
  int wd_ = -1;
};

BOOST_AUTO_TEST_CASE(SigusrOneVaultsNow) {
  Host h;
  auto d = h.Spec(1, 0, 1, 64 << 10);
  auto f = h.AttachConnected(d);
  Fill(f->region(), 11);
  auto c = f->Persist(0, 4096);
  BOOST_TEST_REQUIRE(c.ok());
  std::filesystem::create_directories(h.vault);
  RenameWatch watch(h.vault);
  BOOST_TEST_REQUIRE(watch.ok());
  BOOST_TEST_REQUIRE(h.daemon->Signal(SIGUSR1).ok());
  const std::string name = d.volume.ToString() + ".vault";
  BOOST_TEST_REQUIRE(watch.Wait(name), h.Log());
  auto hdr = ReadVaultHeader(h.vault, d.volume, 1 << 30);
  BOOST_TEST_REQUIRE(hdr.ok(), hdr.status().ToString());
  BOOST_TEST(hdr->durable_seq == c->durable_seq);
}

BOOST_AUTO_TEST_CASE(PeriodicVaultPicksUpNewPersists) {
  Host h;
  h.daemon->Kill();
  h.daemon.reset();
  h.StartDaemon({"--vault-interval", "1"});
  auto d = h.Spec(1, 0, 1, 64 << 10);
  auto f = h.AttachConnected(d);
  std::filesystem::create_directories(h.vault);
  RenameWatch watch(h.vault);
  BOOST_TEST_REQUIRE(watch.ok());
  Fill(f->region(), 12);
  auto c = f->Persist(0, 4096);
  BOOST_TEST_REQUIRE(c.ok());
  const std::string name = d.volume.ToString() + ".vault";
  // The first periodic vault may predate the persist; wait for one that
  // holds it.
  bool seen = false;
  for (int i = 0; i < 3 && !seen; ++i) {
    BOOST_TEST_REQUIRE(watch.Wait(name), h.Log());
    auto hdr = ReadVaultHeader(h.vault, d.volume, 1 << 30);
    seen = hdr.ok() && hdr->durable_seq == c->durable_seq;
  }
  BOOST_TEST(seen);
}

BOOST_AUTO_TEST_CASE(DetachClosesAndRemovalFreesTheDevice) {
  Host h;
  auto d = h.Spec(1, 0, 1, 64 << 10);
  auto f = h.AttachConnected(d);
  Fill(f->region(), 21);
  BOOST_TEST_REQUIRE(f->Persist(0, 4096).ok());
  BOOST_TEST_REQUIRE(h.toolstack->BeginDetach(d).ok());
  BOOST_TEST_REQUIRE(f->WaitBackendState(XenbusState::kClosed).ok(), h.Log());
  f->DropTransport();
  BOOST_TEST_REQUIRE(f->SetState(XenbusState::kClosed).ok());
  BOOST_TEST_REQUIRE(h.toolstack->Remove(d).ok());
  f.reset();
  // Freed: the region was vaulted, and the volume can now be attached to
  // another domain (a held region would refuse: it is granted to dom 1).
  auto d2 = h.Spec(2, 0, 1, 64 << 10);
  auto f2 = h.AttachConnected(d2);
  BOOST_TEST(Holds(f2->region().first(4096), 21));
  BOOST_TEST(std::filesystem::exists(VaultPath(h.vault, d.volume)));
  // No node of the removed device came back.
  BOOST_TEST(!h.xs->Directory(platform::kNoTx, schema::BackendDir(0, 1, 0)).ok());
}

// Returns once vnvramd has finished handling every xenstore change made
// before the call: a vault request is handled while the watch events are
// drained, the devices they touched are refreshed before the next batch, so
// the second of two requests completes after that refresh.
void SyncWithDaemon(Host& h, uint64_t* vault_request) {
  for (int i = 0; i < 2; ++i) {
    const std::string n = std::to_string(++*vault_request);
    BOOST_TEST_REQUIRE(
        h.xs->Write(platform::kNoTx, schema::DaemonKey(0, dk::kVaultRequest), n).ok());
    auto done = WaitForValue(*h.xs, schema::DaemonKey(0, dk::kVaultCompleted), n);
    BOOST_TEST_REQUIRE(done.ok(), done.status().ToString() << "\n" << h.Log());
  }
}

size_t Count(const std::string& text, std::string_view what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

BOOST_AUTO_TEST_CASE(ClosingWrittenOverAClosedBackendIsAnsweredWithClosedAgain) {
  Host h;
  auto good = h.AttachConnected(h.Spec(2, 0, 2, 64 << 10));
  auto d = h.Spec(1, 0, 1, 64 << 10);
  auto f = h.AttachConnected(d);
  BOOST_TEST_REQUIRE(h.toolstack->BeginDetach(d).ok());
  BOOST_TEST_REQUIRE(f->WaitBackendState(XenbusState::kClosed).ok(), h.Log());
  // The toolstack detaches again (a retried detach, or one that does not
  // look first): online = 0 and Closing over our Closed. It then waits for
  // Closed, which must come again, each time.
  for (int i = 0; i < 2; ++i) {
    BOOST_TEST_REQUIRE(h.toolstack->BeginDetach(d).ok());
    auto st = WaitForValue(*h.xs, f->BeKey(be::kState), "6");
    BOOST_TEST_REQUIRE(st.ok(), st.status().ToString() << "\n" << h.Log());
  }
  // Idempotent: once the node says Closed, a refresh writes nothing (our
  // own write of Closed does not feed on itself).
  uint64_t vault_request = 0;
  BOOST_TEST_REQUIRE(h.xs->Write(platform::kNoTx, f->BeKey(be::kOnline), "0").ok());
  SyncWithDaemon(h, &vault_request);
  BOOST_TEST(Count(h.Log(), "written again") == 2u, h.Log());
  BOOST_TEST(h.Read(f->BeKey(be::kState)) == "6");
  // The detach completes: the directories go and the volume is free.
  f->DropTransport();
  BOOST_TEST_REQUIRE(h.toolstack->Remove(d).ok());
  f.reset();
  auto f3 = h.AttachConnected(h.Spec(3, 0, 1, 64 << 10));
  ExpectServing(*f3);
  ExpectServing(*good);
}

BOOST_AUTO_TEST_CASE(OnlineZeroOnABackendTheFrontendClosedEndsClosed) {
  Host h;
  auto d = h.Spec(1, 0, 1, 64 << 10);
  auto f = h.AttachConnected(d);
  // The guest unplugs on its own: the Closing/Closed dance with online = 1.
  BOOST_TEST_REQUIRE(f->SetState(XenbusState::kClosing).ok());
  BOOST_TEST_REQUIRE(f->WaitBackendState(XenbusState::kClosing).ok(), h.Log());
  f->DropTransport();
  BOOST_TEST_REQUIRE(f->SetState(XenbusState::kClosed).ok());
  BOOST_TEST_REQUIRE(f->WaitBackendState(XenbusState::kClosed).ok(), h.Log());

  // The toolstack's detach in one transaction: online = 0, state = Closing.
  BOOST_TEST_REQUIRE(h.toolstack->BeginDetach(d).ok());
  auto st = WaitForValue(*h.xs, f->BeKey(be::kState), "6");
  BOOST_TEST_REQUIRE(st.ok(), st.status().ToString() << "\n" << h.Log());

  // And in two steps, Closing first while still online, then online = 0:
  // Closed again after each.
  BOOST_TEST_REQUIRE(h.xs->Write(platform::kNoTx, f->BeKey(be::kOnline), "1").ok());
  BOOST_TEST_REQUIRE(h.xs->Write(platform::kNoTx, f->BeKey(be::kState), "5").ok());
  st = WaitForValue(*h.xs, f->BeKey(be::kState), "6");
  BOOST_TEST_REQUIRE(st.ok(), st.status().ToString() << "\n" << h.Log());
  BOOST_TEST_REQUIRE(h.xs->Write(platform::kNoTx, f->BeKey(be::kOnline), "0").ok());
  uint64_t vault_request = 0;
  SyncWithDaemon(h, &vault_request);
  BOOST_TEST(h.Read(f->BeKey(be::kState)) == "6");
  BOOST_TEST(Count(h.Log(), "written again") == 2u, h.Log());

  BOOST_TEST_REQUIRE(h.toolstack->Remove(d).ok());
  BOOST_TEST(!h.xs->Directory(platform::kNoTx, schema::BackendDir(0, 1, 0)).ok());
}

BOOST_AUTO_TEST_CASE(RemovingAConnectedDeviceFreesIt) {
  Host h;
  auto good = h.AttachConnected(h.Spec(2, 0, 2, 64 << 10));
  auto d = h.Spec(1, 0, 1, 64 << 10);
  auto f = h.AttachConnected(d);
  Fill(f->region().first(4096), 23);
  BOOST_TEST_REQUIRE(f->Persist(0, 4096).ok());
  // The toolstack removes both directories under a live ring (guest
  // destroyed): the ring stops, the region is vaulted and freed.
  BOOST_TEST_REQUIRE(h.toolstack->Remove(d).ok());
  f.reset();
  auto d3 = h.Spec(3, 0, 1, 64 << 10);
  auto f3 = h.AttachConnected(d3);
  BOOST_TEST(Holds(f3->region().first(4096), 23));
  BOOST_TEST(!h.xs->Directory(platform::kNoTx, schema::BackendDir(0, 1, 0)).ok());
  ExpectServing(*good);
}

BOOST_AUTO_TEST_CASE(LosingXenstoreVaultsAndExitsNonZero) {
  Host h;
  auto d = h.Spec(1, 0, 1, 64 << 10);
  auto f = h.AttachConnected(d);
  Fill(f->region(), 29);
  auto c = f->Persist(0, f->region().size());
  BOOST_TEST_REQUIRE(c.ok());
  f.reset();
  h.xs.reset();
  BOOST_TEST_REQUIRE(h.xsd->Stop().ok());
  // vnvramd notices the lost connection, vaults, and exits 1.
  auto rc = h.daemon->Stop();
  BOOST_TEST_REQUIRE(rc.ok());
  BOOST_TEST(*rc == 1, h.Log());
  h.daemon.reset();
  auto hdr = ReadVaultHeader(h.vault, d.volume, 1 << 30);
  BOOST_TEST_REQUIRE(hdr.ok(), hdr.status().ToString());
  BOOST_TEST(hdr->durable_seq == c->durable_seq);
}

BOOST_AUTO_TEST_CASE(ASecondDaemonOnTheSameVaultDirRefusesToStart) {
  Host h;
  const std::string bin = std::string(VNVRAM_BIN_DIR) + "/vnvramd";
  auto r = sim::testing::RunProgram(
      {bin, "--platform", "sim:" + h.xsd->socket_dir() + ":0", "--vault-dir", h.vault}, {});
  BOOST_TEST_REQUIRE(r.ok());
  BOOST_TEST(r->exit_code == 1, r->out);
  BOOST_TEST(r->out.find("another vnvramd") != std::string::npos, r->out);
  // The first one still serves.
  auto f = h.AttachConnected(h.Spec(1, 0, 1, 64 << 10));
  ExpectServing(*f);
}

BOOST_AUTO_TEST_CASE(BadConfigIsAOneLineErrorAndExitTwo) {
  char tmpl[] = "/tmp/vnvramd-conf-XXXXXX";
  BOOST_TEST_REQUIRE(::mkdtemp(tmpl) != nullptr);
  const std::string dir = tmpl;
  const std::string bin = std::string(VNVRAM_BIN_DIR) + "/vnvramd";
  struct Case {
    std::string text;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {"platform = xen\nvault-dir = /tmp\nbogus = 1\n", "unknown key 'bogus'"},
      {"platform = xen\nvault-interval = 10s\n", "vault-interval = '10s'"},
      {"platform = xen\nplatform = xen\n", "given twice"},
      {"platform xen\n", "expected 'key = value'"},
      {"vault-dir = /tmp\nlog-level = loud\n", "log-level = 'loud'"},
  };
  for (const Case& c : cases) {
    const std::string path = dir + "/vnvramd.conf";
    std::ofstream(path) << c.text;
    auto r = sim::testing::RunProgram({bin, "--config", path}, {});
    BOOST_TEST_REQUIRE(r.ok());
    BOOST_TEST(r->exit_code == 2, c.text);
    BOOST_TEST(r->out.find(c.expect) != std::string::npos, r->out);
    BOOST_TEST(std::count(r->out.begin(), r->out.end(), '\n') == 1, r->out);
  }
  auto r = sim::testing::RunProgram({bin, "--platform", "xen"}, {});
  BOOST_TEST_REQUIRE(r.ok());
  BOOST_TEST(r->exit_code == 2);
  BOOST_TEST(r->out.find("vault-dir is required") != std::string::npos, r->out);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace
}  // namespace vnvram::backend::testing
