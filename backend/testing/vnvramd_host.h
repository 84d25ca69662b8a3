// Test support for vnvramd's black-box tests on the sim platform (Boost.Test):
// Host, one simulated host (a sim xenstored with guests 1..3, a dom0
// toolstack connection, vnvramd as dom0), and checks that a test
// frontend's device serves or was fenced. One object per test case; not
// thread-safe.
#pragma once

#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "backend/testing/vnvramd_harness.h"
#include "platform/sim/xenstored/testing/xenstored_process.h"

namespace vnvram::backend::testing {

inline Uuid MakeUuid(uint8_t n) {
  Uuid u;
  for (size_t i = 0; i < u.bytes.size(); ++i) u.bytes[i] = static_cast<uint8_t>(0x11 * i);
  u.bytes[0] = n;
  return u;
}

// One simulated host: sim xenstored with guests 1..3, a dom0 xenstore
// connection acting as the toolstack, and vnvramd as dom0.
struct Host {
  Host() {
    auto x = sim::testing::XenstoredProcess::Start({1, 2, 3});
    BOOST_TEST_REQUIRE(x.ok(), x.status().ToString());
    xsd = std::move(x).value();
    char tmpl[] = "/tmp/vnvramd-test-XXXXXX";
    BOOST_TEST_REQUIRE(::mkdtemp(tmpl) != nullptr);
    root = tmpl;
    vault = root + "/vault";
    auto p = platform::OpenSimPlatform(platform::SimOptions{xsd->socket_dir(), 0});
    BOOST_TEST_REQUIRE(p.ok(), p.status().ToString());
    dom0 = std::move(p).value();
    auto s = dom0->OpenXenStore();
    BOOST_TEST_REQUIRE(s.ok(), s.status().ToString());
    xs = std::move(s).value();
    toolstack = std::make_unique<Toolstack>(*xs);
    StartDaemon();
  }
  ~Host() {
    if (daemon) {
      auto rc = daemon->Stop();
      if (!rc.ok() || *rc != 0) BOOST_TEST_MESSAGE("vnvramd log:\n" << daemon->Log());
    }
    daemon.reset();
    std::error_code ec;
    std::filesystem::remove_all(root, ec);
  }
  void StartDaemon(std::vector<std::string> extra = {}, std::vector<std::string> env = {},
                   DomId self = 0) {
    VnvramdProcess::Options o;
    o.self = self;
    o.extra_env = std::move(env);
    o.sim_dir = xsd->socket_dir();
    o.vault_dir = vault;
    o.log_path = root + "/vnvramd.log";
    o.extra_args = std::move(extra);
    auto d = VnvramdProcess::Start(o);
    BOOST_TEST_REQUIRE(d.ok(), d.status().ToString());
    daemon = std::move(d).value();
  }
  std::string Log() const { return daemon ? daemon->Log() : std::string(); }

  DeviceSpec Spec(DomId f, DevId dev, uint8_t vol, uint64_t size = 1 << 20) {
    DeviceSpec d;
    d.frontend = f;
    d.dev = dev;
    d.volume = MakeUuid(vol);
    d.size = size;
    return d;
  }
  // Attaches and opens a frontend; waits for InitWait.
  std::unique_ptr<TestFrontend> Attach(const DeviceSpec& d) {
    BOOST_TEST_REQUIRE(toolstack->Attach(d).ok());
    auto f = TestFrontend::Open(xsd->socket_dir(), d);
    BOOST_TEST_REQUIRE(f.ok(), f.status().ToString());
    auto st = (*f)->WaitBackendState(schema::XenbusState::kInitWait);
    BOOST_TEST_REQUIRE(st.ok(), st.status().ToString() << "\n" << Log());
    return std::move(f).value();
  }
  std::unique_ptr<TestFrontend> AttachConnected(const DeviceSpec& d) {
    auto f = Attach(d);
    Status s = f->Connect();
    BOOST_TEST_REQUIRE(s.ok(), s.ToString() << "\n" << Log());
    return f;
  }
  std::string Read(const std::string& path) {
    auto v = xs->Read(platform::kNoTx, path);
    return v.ok() ? *v : "<" + v.status().ToString() + ">";
  }

  std::unique_ptr<sim::testing::XenstoredProcess> xsd;
  std::string root;
  std::string vault;
  std::unique_ptr<platform::Platform> dom0;
  std::unique_ptr<platform::XenStore> xs;
  std::unique_ptr<Toolstack> toolstack;
  std::unique_ptr<VnvramdProcess> daemon;
};

inline void Fill(std::span<std::byte> b, uint8_t seed) {
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<std::byte>((i * 31 + seed) & 0xFF);
}
inline bool Holds(std::span<const std::byte> b, uint8_t seed) {
  for (size_t i = 0; i < b.size(); ++i) {
    if (b[i] != static_cast<std::byte>((i * 31 + seed) & 0xFF)) return false;
  }
  return true;
}

// The device works: a persist round trip succeeds.
inline void ExpectServing(TestFrontend& f) {
  auto c = f.Persist(0, 4096);
  BOOST_TEST_REQUIRE(c.ok(), c.status().ToString());
  BOOST_TEST(c->status == VNVRAMIF_RSP_OKAY);
}

// Waits until the device is fenced: error written and state Closing.
inline void ExpectFenced(Host& h, TestFrontend& f, std::string_view what) {
  auto st = f.WaitBackendState(schema::XenbusState::kClosing);
  BOOST_TEST_REQUIRE(st.ok(), what << ": " << st.status().ToString() << "\n" << h.Log());
  const std::string err = h.Read(f.BeKey(schema::be::kError));
  BOOST_TEST_MESSAGE(what << " -> error: " << err);
  BOOST_TEST(!err.empty());
  BOOST_TEST(err[0] != '<', what << ": no error node");
}

}  // namespace vnvram::backend::testing
