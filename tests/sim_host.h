// SimHost: test support for black-box tests of the frontend: one sim host
// with vnvram-xenstored (serving the given guest domains) and vnvramd as
// dom0 as real child processes, a dom0 xenstore handle, and helpers to run
// nvram-tool and vnvram-guest-demo. Waits are on events with deadlines.
// Uses Boost.Test assertions; one object per test case; not thread-safe.
#pragma once

#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "backend/testing/vnvramd_harness.h"
#include "common/parse.h"
#include "platform/platform.h"
#include "platform/sim/xenstored/testing/xenstored_process.h"
#include "tests/child_process.h"

namespace vnvram::testing {

using std::chrono::milliseconds;
inline constexpr milliseconds kWait{20000};
inline constexpr const char* kVolume = "0b5e7c1a-2f4d-4e6b-9a8c-1d2e3f405162";

inline std::string Bin(const std::string& name) {
  return std::string(VNVRAM_BIN_DIR) + "/" + name;
}

// One sim host: xenstored serving domain 1, vnvramd as dom0, a vault dir.
struct Host {
  explicit Host(std::vector<DomId> guests = {1}) {
    auto xs = sim::testing::XenstoredProcess::Start(guests);
    BOOST_TEST_REQUIRE(xs.ok(), xs.status().ToString());
    xenstored = std::move(xs).value();
    char tmpl[] = "/tmp/vnvram-fe-test-XXXXXX";
    BOOST_TEST_REQUIRE(mkdtemp(tmpl) != nullptr);
    scratch = tmpl;
    std::filesystem::create_directories(scratch + "/vault");
    auto p = platform::OpenPlatform(Dom0());
    BOOST_TEST_REQUIRE(p.ok(), p.status().ToString());
    dom0 = std::move(p).value();
    auto x = dom0->OpenXenStore();
    BOOST_TEST_REQUIRE(x.ok(), x.status().ToString());
    xs0 = std::move(x).value();
    StartBackend();
  }
  ~Host() {
    backend.reset();
    xs0.reset();
    dom0.reset();
    xenstored.reset();
    std::error_code ec;
    std::filesystem::remove_all(scratch, ec);
  }

  std::string Dom0() const { return "sim:" + xenstored->socket_dir() + ":0"; }
  std::string Dom1() const { return "sim:" + xenstored->socket_dir() + ":1"; }
  std::string Dom(DomId d) const {
    return "sim:" + xenstored->socket_dir() + ":" + std::to_string(d);
  }

  void StartBackend() {
    backend::testing::VnvramdProcess::Options o;
    o.sim_dir = xenstored->socket_dir();
    o.self = 0;
    o.vault_dir = scratch + "/vault";
    o.log_path = scratch + "/vnvramd.log";
    auto d = backend::testing::VnvramdProcess::Start(o);
    BOOST_TEST_REQUIRE(d.ok(), d.status().ToString());
    backend = std::move(d).value();
  }

  sim::testing::ProgramResult Tool(std::vector<std::string> args) {
    std::vector<std::string> argv{Bin("nvram-tool"), "--platform", Dom0()};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = sim::testing::RunProgram(argv, {}, kWait);
    BOOST_TEST_REQUIRE(r.ok(), r.status().ToString());
    return *r;
  }

  void Attach(uint32_t dev = 0, const std::string& size = "1M") {
    auto r = Tool({"attach", "1", "--backend", "0", "--devid", std::to_string(dev), "--size", size,
                   "--volume", kVolume});
    BOOST_TEST_REQUIRE(r.exit_code == 0, r.out);
  }

  std::unique_ptr<ChildProcess> Guest(std::vector<std::string> args) {
    std::vector<std::string> argv{Bin("vnvram-guest-demo"), "--platform", Dom1()};
    argv.insert(argv.end(), args.begin(), args.end());
    auto c = ChildProcess::Spawn(argv);
    BOOST_TEST_REQUIRE(c.ok(), c.status().ToString());
    return std::move(c).value();
  }

  // Runs a guest command to completion; returns its exit code.
  int RunGuest(std::vector<std::string> args, std::string* out = nullptr) {
    auto g = Guest(std::move(args));
    auto rc = g->Wait(kWait);
    BOOST_TEST_REQUIRE(rc.ok(), rc.status().ToString());
    if (out != nullptr) *out = g->transcript();
    if (*rc != 0) BOOST_TEST_MESSAGE("guest output:\n" << g->transcript());
    return *rc;
  }

  // Every node below `path` (as dom0 sees it).
  void Walk(const std::string& path, std::set<std::string>* out) {
    out->insert(path);
    auto kids = xs0->Directory(platform::kNoTx, path);
    if (!kids.ok()) return;
    for (const auto& k : *kids) Walk(path == "/" ? "/" + k : path + "/" + k, out);
  }

  std::string BackendLog() const { return backend ? backend->Log() : ""; }

  std::unique_ptr<sim::testing::XenstoredProcess> xenstored;
  std::string scratch;
  std::unique_ptr<platform::Platform> dom0;
  std::unique_ptr<platform::XenStore> xs0;
  std::unique_ptr<backend::testing::VnvramdProcess> backend;
};

}  // namespace vnvram::testing
