// DeviceExport over a real libvnvram Device (this process as domain 1)
// against vnvram-xenstored and vnvramd as child processes: dirty pages
// tracked and persisted by Persist()/Flush(), a failed FLUSH keeping its
// pages dirty, and a backend restart under the export: the span is taken
// again (a re-map) and stores made to the old one between calls survive.
#define BOOST_TEST_MODULE frontd_device_export
#include "frontd/device_export.h"

#include <boost/test/unit_test.hpp>
#include <cstring>
#include <vector>

#include "tests/sim_host.h"

BOOST_TEST_DONT_PRINT_LOG_VALUE(std::byte)

namespace vnvram {
inline std::ostream& operator<<(std::ostream& o, Code c) {
  return o << CodeName(c);
}
}  // namespace vnvram

namespace vnvram::frontd {
namespace {

using testing::Host;
constexpr uint64_t kSize = 1 << 20;

std::unique_ptr<Device> OpenDev(Host& h, std::chrono::milliseconds timeout) {
  OpenOptions o;
  o.platform = h.Dom1();
  o.devid = 0;
  o.timeout = timeout;
  auto d = Device::Open(o);
  BOOST_TEST_REQUIRE(d.ok(), d.status().ToString() << "\n" << h.BackendLog());
  return std::move(d).value();
}

std::unique_ptr<DeviceExport> MakeExport(Device& d, bool read_only = false) {
  auto e = DeviceExport::Create(d, {.read_only = read_only});
  BOOST_TEST_REQUIRE(e.ok(), e.status().ToString());
  return std::move(e).value();
}

std::vector<std::byte> Pattern(size_t n, uint8_t seed) {
  std::vector<std::byte> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>((i * 17 + seed) & 0xff);
  return v;
}

std::vector<std::byte> ReadBack(BlockExport& e, uint64_t off, size_t n) {
  std::vector<std::byte> v(n);
  BOOST_TEST_REQUIRE(e.Read(off, v).ok());
  return v;
}

BOOST_AUTO_TEST_CASE(DirtyPagesArePersistedByFuaAndFlush) {
  Host h;
  h.Attach(0, "1M");
  auto d = OpenDev(h, std::chrono::seconds(10));
  auto e = MakeExport(*d);
  BOOST_TEST(e->size() == kSize);
  const auto a = Pattern(5000, 1);
  BOOST_TEST_REQUIRE(e->Write(100, a).ok());  // pages 0 and 1
  const auto b = Pattern(4096, 2);
  BOOST_TEST_REQUIRE(e->Write(512 << 10, b).ok());
  BOOST_TEST(e->dirty_pages() == 3u);
  BOOST_TEST((ReadBack(*e, 100, a.size()) == a));

  const uint64_t seq0 = d->durable_seq();
  BOOST_TEST_REQUIRE(e->Persist(512 << 10, 4096).ok());  // FUA of b
  BOOST_TEST(e->dirty_pages() == 2u);
  BOOST_TEST(d->durable_seq() > seq0);
  const uint64_t seq1 = d->durable_seq();
  BOOST_TEST_REQUIRE(e->Flush().ok());
  BOOST_TEST(e->dirty_pages() == 0u);
  BOOST_TEST(d->durable_seq() > seq1);
  const uint64_t seq2 = d->durable_seq();
  BOOST_TEST_REQUIRE(e->Flush().ok());  // nothing dirty: no round trip
  BOOST_TEST(d->durable_seq() == seq2);

  BOOST_TEST_REQUIRE(e->Zero(150, 50).ok());
  BOOST_TEST(e->dirty_pages() == 1u);
  const auto z = ReadBack(*e, 150, 50);
  BOOST_TEST(std::all_of(z.begin(), z.end(), [](std::byte x) { return x == std::byte{0}; }));
  // The backend's memory holds what the export stored (copy-mode read).
  std::vector<std::byte> got(a.size());
  BOOST_TEST_REQUIRE(d->read(100, got).ok());
  BOOST_TEST(std::memcmp(got.data(), a.data(), 50) == 0);

  BOOST_TEST(e->Write(kSize - 1, Pattern(2, 3)).code() == Code::kOutOfRange);
  BOOST_TEST(e->Read(kSize + 1, got).code() == Code::kOutOfRange);
  BOOST_TEST(e->Persist(~uint64_t{0}, 2).code() == Code::kOutOfRange);
  BOOST_TEST(e->remaps() == 0u);
  BOOST_TEST(d->close().ok());
}

BOOST_AUTO_TEST_CASE(ReadOnlyExportRefusesStores) {
  Host h;
  h.Attach(0, "1M");
  auto d = OpenDev(h, std::chrono::seconds(10));
  auto e = MakeExport(*d, /*read_only=*/true);
  BOOST_TEST(e->read_only());
  BOOST_TEST(e->Write(0, Pattern(10, 1)).code() == Code::kPermissionDenied);
  BOOST_TEST(e->Zero(0, 10).code() == Code::kPermissionDenied);
  BOOST_TEST(e->Flush().ok());
  BOOST_TEST(d->close().ok());
}

// The backend dies (kill -9, nothing vaulted) and a new instance comes: the
// next Device call re-handshakes, the mapping moves, and the export carries
// on with the new span; what was stored to the old span between calls
// (with no backend serving) is carried over and made durable by FLUSH.
BOOST_AUTO_TEST_CASE(BackendRestartRemapsAndKeepsStores) {
  Host h;
  h.Attach(0, "1M");
  auto d = OpenDev(h, std::chrono::seconds(10));
  auto e = MakeExport(*d);
  const auto a = Pattern(4096, 5);
  BOOST_TEST_REQUIRE(e->Write(0, a).ok());
  BOOST_TEST_REQUIRE(e->Flush().ok());
  const uint64_t gen = d->generation();

  h.backend->Kill();
  const auto b = Pattern(8192, 6);
  BOOST_TEST_REQUIRE(e->Write(8192, b).ok());  // into the old mapping
  h.StartBackend();
  Status s = e->Flush();
  BOOST_TEST_REQUIRE(s.ok(), s.ToString() << "\n" << h.BackendLog());
  BOOST_TEST(d->generation() == gen + 1);
  BOOST_TEST(e->remaps() == 1u);
  BOOST_TEST(e->dirty_pages() == 0u);
  BOOST_TEST((ReadBack(*e, 0, a.size()) == a));
  BOOST_TEST((ReadBack(*e, 8192, b.size()) == b));
  // In the new backend's memory, not only in our span.
  std::vector<std::byte> got(b.size());
  BOOST_TEST_REQUIRE(d->read(8192, got).ok());
  BOOST_TEST((got == b));
  // And the export keeps working on the new span.
  const auto c = Pattern(100, 7);
  BOOST_TEST_REQUIRE(e->Write(300000, c).ok());
  BOOST_TEST_REQUIRE(e->Persist(300000, 100).ok());
  BOOST_TEST_REQUIRE(d->read(300000, std::span(got.data(), 100)).ok());
  BOOST_TEST(std::memcmp(got.data(), c.data(), 100) == 0);
  BOOST_TEST(d->close().ok());
}

// A FLUSH that fails (no backend within the call's deadline) keeps its pages
// dirty; the next FLUSH, with a backend back, persists them.
BOOST_AUTO_TEST_CASE(FailedFlushKeepsPagesDirty) {
  Host h;
  h.Attach(0, "1M");
  auto d = OpenDev(h, std::chrono::milliseconds(800));
  auto e = MakeExport(*d);
  const auto a = Pattern(4096 * 3, 8);
  BOOST_TEST_REQUIRE(e->Write(40960, a).ok());
  BOOST_TEST(e->dirty_pages() == 3u);
  h.backend->Kill();
  const Status failed = e->Flush();
  BOOST_TEST(!failed.ok());
  BOOST_TEST(e->dirty_pages() == 3u, failed.ToString());
  BOOST_TEST(!e->Persist(40960, 4096).ok());
  BOOST_TEST(e->dirty_pages() == 3u);
  h.StartBackend();
  // The device may need a call or two to notice the new instance within
  // its short deadline; each attempt is one event-driven wait in libvnvram.
  Status s = e->Flush();
  for (int i = 0; i < 10 && !s.ok(); ++i) s = e->Flush();
  BOOST_TEST_REQUIRE(s.ok(), s.ToString() << "\n" << h.BackendLog());
  BOOST_TEST(e->dirty_pages() == 0u);
  std::vector<std::byte> got(a.size());
  BOOST_TEST_REQUIRE(d->read(40960, got).ok());
  BOOST_TEST((got == a));
  BOOST_TEST(d->close().ok());
}

}  // namespace
}  // namespace vnvram::frontd
