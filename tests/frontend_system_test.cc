// Black-box tests of libvnvram, nvram-tool and vnvram-guest-demo on the sim
// platform: real processes (vnvram-xenstored, vnvramd as dom0, guest
// programs as domain 1) over real sockets and shared memory. Every wait is
// on an event (ready fd, output line, pidfd, xenstore watch) with a
// deadline; nothing sleeps.
#define BOOST_TEST_MODULE frontend_system
#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "backend/testing/vnvramd_harness.h"
#include "common/parse.h"
#include "platform/platform.h"
#include "platform/sim/xenstored/testing/xenstored_process.h"
#include "tests/child_process.h"
#include "tests/sim_host.h"
#include "xenstore-schema/schema.h"

namespace vnvram {
namespace {

using testing::Host;
using testing::kVolume;
using testing::kWait;

// The highest N such that "persisted N" was printed.
int64_t LastPersisted(const std::string& transcript) {
  int64_t last = -1;
  size_t pos = 0;
  while ((pos = transcript.find("persisted ", pos)) != std::string::npos) {
    pos += 10;
    const size_t end = transcript.find_first_of(" \n", pos);
    auto n = ParseU64(transcript.substr(pos, end - pos));
    if (n.ok()) last = std::max<int64_t>(last, static_cast<int64_t>(*n));
  }
  return last;
}

BOOST_AUTO_TEST_CASE(HandshakePersistAndReadBackThroughASecondMapping) {
  Host h;
  h.Attach();
  std::string out;
  BOOST_TEST_REQUIRE(h.RunGuest({"write", "--count", "200", "--batch", "8"}, &out) == 0);
  BOOST_TEST(out.find("done records=200") != std::string::npos, out);
  // Another process of the same domain: a new handshake, a second mapping
  // of the same backend memory.
  BOOST_TEST(h.RunGuest({"verify", "--count", "200"}) == 0);
  // Copy mode: the same bytes through granted pages, no mapping.
  BOOST_TEST(h.RunGuest({"verify", "--count", "200", "--copy-mode"}) == 0);

  auto list = h.Tool({"list", "--json"});
  BOOST_TEST_REQUIRE(list.exit_code == 0, list.out);
  auto j = nlohmann::json::parse(list.out, nullptr, false);
  BOOST_TEST_REQUIRE(j.is_array(), list.out);
  BOOST_TEST_REQUIRE(j.size() == 1u);
  BOOST_TEST(j[0]["volume"] == kVolume);
  BOOST_TEST(j[0]["region_size"] == 1048576);
  BOOST_TEST(j[0]["frontend_state"] == "Closed");
}

BOOST_AUTO_TEST_CASE(CApiProgramBuiltAsCWorks) {
  Host h;
  h.Attach();
  auto r = sim::testing::RunProgram(
      {std::string(VNVRAM_BINARY_DIR) + "/tests/vnvram_c_api_smoke", h.Dom1(), "0"}, {}, kWait);
  BOOST_TEST_REQUIRE(r.ok(), r.status().ToString());
  BOOST_TEST(r->exit_code == 0, r->out);
  BOOST_TEST(r->out.find("c_api_smoke: ok") != std::string::npos, r->out);
}

BOOST_AUTO_TEST_CASE(FrontendCrashAndReattachKeepsEveryAcknowledgedRecord) {
  Host h;
  h.Attach();
  auto writer = h.Guest({"write", "--count", "16000"});
  // Let it acknowledge a few hundred records, then crash it mid-stream.
  auto line = writer->WaitForLine("persisted 300 ", kWait);
  BOOST_TEST_REQUIRE(line.ok(), line.status().ToString());
  BOOST_TEST_REQUIRE(writer->Kill().ok());
  auto rc = writer->Wait(kWait);
  BOOST_TEST_REQUIRE(rc.ok());
  BOOST_TEST(*rc == -9);
  const int64_t acked = LastPersisted(writer->transcript());
  BOOST_TEST_REQUIRE(acked >= 300);
  // A new frontend re-initialises the device (the backend drops the dead
  // ring and offers the region again): everything acknowledged is there.
  BOOST_TEST(h.RunGuest({"verify", "--count", std::to_string(acked + 1)}) == 0);
  // ... and the device is fully usable again.
  BOOST_TEST(h.RunGuest({"write", "--from", std::to_string(acked + 1), "--count", "50"}) == 0);
  BOOST_TEST(h.RunGuest({"verify", "--count", std::to_string(acked + 51)}) == 0);
}

BOOST_AUTO_TEST_CASE(BackendRestartWithVaultKeepsRecordsAndFrontendRehandshakes) {
  Host h;
  h.Attach();
  auto writer = h.Guest({"write", "--count", "400", "--pause-after", "200"});
  auto paused = writer->WaitForLine("paused ", kWait);
  BOOST_TEST_REQUIRE(paused.ok(), paused.status().ToString());
  // SIGTERM: vnvramd vaults the region and exits; a new instance restores
  // it and publishes new grants (InitWait) while the guest keeps its open
  // device.
  auto stopped = h.backend->Stop(kWait);
  BOOST_TEST_REQUIRE(stopped.ok(), stopped.status().ToString());
  BOOST_TEST(*stopped == 0, h.BackendLog());
  h.backend.reset();
  h.StartBackend();
  BOOST_TEST_REQUIRE(writer->WriteStdin("go\n").ok());
  auto remapped = writer->WaitForLine("remapped gen=2", kWait);
  BOOST_TEST_REQUIRE(remapped.ok(), remapped.status().ToString() + "\n" + h.BackendLog());
  auto done = writer->WaitForLine("done records=400", kWait);
  BOOST_TEST_REQUIRE(done.ok(), done.status().ToString());
  auto rc = writer->Wait(kWait);
  BOOST_TEST_REQUIRE(rc.ok());
  BOOST_TEST(*rc == 0, writer->transcript());
  BOOST_TEST(h.RunGuest({"verify", "--count", "400"}) == 0);
  BOOST_TEST(h.RunGuest({"verify", "--count", "400", "--copy-mode"}) == 0);
}

BOOST_AUTO_TEST_CASE(DetachLeavesNoXenstoreNodesBehind) {
  Host h;
  // What a toolstack has when it built the domains (libxl creates each
  // domain's device directory and the driver domain's backend directory).
  auto d1 = h.xs0->GetDomainPath(1);
  auto d0 = h.xs0->GetDomainPath(0);
  BOOST_TEST_REQUIRE(d1.ok());
  BOOST_TEST_REQUIRE(d0.ok());
  BOOST_TEST_REQUIRE(h.xs0->Mkdir(platform::kNoTx, *d1 + "/device").ok());
  BOOST_TEST_REQUIRE(h.xs0->Mkdir(platform::kNoTx, *d0 + "/backend").ok());
  std::set<std::string> before;
  h.Walk("/", &before);

  h.Attach(0);
  h.Attach(7, "64K");
  BOOST_TEST(h.RunGuest({"write", "--count", "10"}) == 0);
  // A guest that still has device 7 open while it is detached.
  auto holder = h.Guest({"--devid", "7", "write", "--count", "20", "--pause-after", "5"});
  BOOST_TEST_REQUIRE(holder->WaitForLine("paused ", kWait).ok());

  auto r0 = h.Tool({"detach", "1", "0"});
  BOOST_TEST(r0.exit_code == 0, r0.out);
  auto r7 = h.Tool({"detach", "1", "7", "--timeout", "10"});
  BOOST_TEST(r7.exit_code == 0, r7.out + h.BackendLog());
  // The holder learns that its device is gone: an error, not a hang.
  BOOST_TEST_REQUIRE(holder->WriteStdin("go\n").ok());
  auto rc = holder->Wait(kWait);
  BOOST_TEST_REQUIRE(rc.ok());
  BOOST_TEST(*rc == 1, holder->transcript());
  BOOST_TEST(holder->transcript().find("detached") != std::string::npos, holder->transcript());

  std::set<std::string> after;
  h.Walk("/", &after);
  // The daemon's own directory changes as it works (vault bookkeeping).
  const std::string daemon_dir = schema::DomainVnvramDir(0);
  auto strip = [&](std::set<std::string>& s) {
    for (auto it = s.begin(); it != s.end();) {
      it = it->rfind(daemon_dir, 0) == 0 ? s.erase(it) : std::next(it);
    }
  };
  strip(before);
  strip(after);
  std::vector<std::string> extra, missing;
  for (const auto& p : after) {
    if (!before.count(p)) extra.push_back(p);
  }
  for (const auto& p : before) {
    if (!after.count(p)) missing.push_back(p);
  }
  BOOST_TEST(extra.empty(), "left behind: " << (extra.empty() ? "" : extra.front()));
  BOOST_TEST(missing.empty(), "removed too much: " << (missing.empty() ? "" : missing.front()));
  // Detaching again: a clear error.
  auto again = h.Tool({"detach", "1", "0"});
  BOOST_TEST(again.exit_code == 1);
  BOOST_TEST(again.out.find("no vnvram device 0 in domain 1") != std::string::npos, again.out);
}

BOOST_AUTO_TEST_CASE(NvramToolRejectsBadValuesWithOneLineNamingThem) {
  Host h;
  struct Case {
    std::vector<std::string> args;
    std::string names;
  };
  const std::vector<Case> cases = {
      {{"attach", "1", "--backend", "0", "--devid", "x1", "--size", "1M", "--volume", kVolume},
       "--devid 'x1'"},
      {{"attach", "1", "--backend", "0", "--devid", "1", "--size", "1Q", "--volume", kVolume},
       "--size '1Q'"},
      {{"attach", "99999", "--backend", "0", "--devid", "1", "--size", "1M", "--volume", kVolume},
       "'99999'"},
      {{"attach", "1", "--backend", "0", "--devid", "1", "--size", "1M", "--volume", "nope"},
       "--volume 'nope'"},
      {{"detach", "1", "0", "--timeout", "0"}, "--timeout '0'"},
      {{"detach", "1", "0 "}, "devid '0 '"},
  };
  for (const auto& c : cases) {
    auto r = h.Tool(c.args);
    BOOST_TEST(r.exit_code == 2, r.out);
    BOOST_TEST(r.out.find(c.names) != std::string::npos, r.out);
    BOOST_TEST(std::count(r.out.begin(), r.out.end(), '\n') == 1, r.out);
  }
  h.Attach(3);
  auto dup = h.Tool(
      {"attach", "1", "--backend", "0", "--devid", "3", "--size", "1M", "--volume", kVolume});
  BOOST_TEST(dup.exit_code == 1);
  BOOST_TEST(dup.out.find("already exists") != std::string::npos, dup.out);
}

// Domain 2 has no vnvramd: the test writes device `dev`'s backend keys
// itself, as a hostile backend would: a 1 MiB region's InitWait keys with
// `changes` applied, then InitWait. The guest's open must fail (exit 1);
// returns what the guest printed.
std::string OpenFromAHostileBackend(Host& h, DevId dev,
                                    const std::map<std::string, std::string>& changes) {
  const std::string devid = std::to_string(dev);
  auto r = h.Tool(
      {"attach", "1", "--backend", "2", "--devid", devid, "--size", "1M", "--volume", kVolume});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.out);
  namespace be = schema::be;
  std::map<std::string, std::string> keys = {{std::string(be::kMaxRingPageOrder), "0"},
                                             {std::string(be::kRegionSize), "1048576"},
                                             {std::string(be::kRegionPages), "256"},
                                             {std::string(be::kPageDirRefs), "1"},
                                             {be::PageDirRef(0), "8"},
                                             {std::string(be::kFeaturePersist), "1"}};
  for (const auto& [k, v] : changes) keys[k] = v;
  auto put = [&](std::string_view k, const std::string& v) {
    BOOST_TEST_REQUIRE(h.xs0->Write(platform::kNoTx, schema::BackendKey(2, 1, dev, k), v).ok());
  };
  for (const auto& [k, v] : keys) put(k, v);
  put(be::kState, "2");  // InitWait, once the rest is there
  std::string out;
  BOOST_TEST(
      h.RunGuest({"--devid", devid, "--timeout-ms", "5000", "verify", "--count", "1"}, &out) == 1);
  return out;
}

// A region-size that disagrees with region-pages.
BOOST_AUTO_TEST_CASE(BackendPublishingBadGeometryFailsOpenWithoutCrashing) {
  Host h;
  const std::string out =
      OpenFromAHostileBackend(h, 4, {{std::string(schema::be::kRegionPages), "255"}});
  BOOST_TEST(out.find("region-pages") != std::string::npos, out);
  // The frontend reported it where the toolstack looks.
  auto err = h.xs0->Read(platform::kNoTx, schema::FrontendKey(1, 4, schema::fe::kError));
  BOOST_TEST_REQUIRE(err.ok(), err.status().ToString());
  BOOST_TEST(err->find("region-pages") != std::string::npos, *err);
}

// The handshake value is hostile input too: out of its range, the open
// fails naming it, before anything is mapped.
BOOST_AUTO_TEST_CASE(BackendPublishingABadHandshakeFailsOpenNamingIt) {
  Host h;
  const std::string out =
      OpenFromAHostileBackend(h, 5, {{std::string(schema::be::kHandshake), "0"}});
  BOOST_TEST(out.find("handshake") != std::string::npos, out);
}

}  // namespace
}  // namespace vnvram
