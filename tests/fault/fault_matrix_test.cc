// The fault matrix (issue 10), short version for make test: 50 faults of
// every kind (each kind at least seven times) at random moments into a
// three-member cluster of real processes while the guest persists without
// pause; nothing acknowledged may be lost, no copy may diverge, no epoch
// may have two primaries, every failover meets its deadline and the guest
// never sees a persist fail. make soak runs the same with 1000 faults
// (vnvram-fault-soak). VNVRAM_FAULT_SEED=N repeats a run's choices.
#define BOOST_TEST_MODULE fault_matrix
#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <random>

#include "common/parse.h"
#include "tests/fault/fault_runner.h"

namespace vnvram::testing {
namespace {

BOOST_AUTO_TEST_CASE(FiftyFaultsLoseNothing) {
  uint64_t seed = std::random_device{}() | 1;
  if (const char* s = std::getenv("VNVRAM_FAULT_SEED"); s != nullptr) {
    auto v = ParseU64(s, "VNVRAM_FAULT_SEED");
    BOOST_TEST_REQUIRE(v.ok(), v.status().ToString());
    seed = *v;
  }
  BOOST_TEST_MESSAGE("seed " << seed << " (VNVRAM_FAULT_SEED repeats it)");
  FaultClusterOptions co;
  FaultRunOptions o;
#ifdef VNVRAM_SANITIZED_BUILD
  // Every process runs several times slower: the deadlines scale with it.
  constexpr uint32_t kSlowdown = 4;
  co.persist_timeout_ms *= kSlowdown;
  co.guest_timeout_ms *= kSlowdown;
  o.failover_deadline *= kSlowdown;
  BOOST_TEST_MESSAGE("sanitized build: deadlines x" << kSlowdown);
#endif
  co.bin_dir = VNVRAM_BIN_DIR;
  co.keep_dir = std::getenv("VNVRAM_KEEP_TEST_DIR") != nullptr;
  auto cluster = FaultCluster::Create(co);
  BOOST_TEST_REQUIRE(cluster.ok(), cluster.status().ToString());
  o.faults = 50;
  o.seed = seed;
  o.progress = [](const std::string& line) { BOOST_TEST_MESSAGE(line); };
  const FaultReport r = RunFaults(**cluster, o);
  BOOST_TEST_MESSAGE("\n" << r.Summary());
  BOOST_TEST_REQUIRE(r.aborted.ok(), r.Summary());
  BOOST_TEST(r.lost == 0u, r.Summary());
  BOOST_TEST(r.divergent == 0u, r.Summary());
  BOOST_TEST(r.split_brain == 0u, r.Summary());
  BOOST_TEST(r.over_deadline == 0u, r.Summary());
  BOOST_TEST(r.writer_errors == 0u, r.Summary());
  for (int k = 0; k < kFaultKinds; ++k) {
    const std::string name(FaultKindName(static_cast<FaultKind>(k)));
    BOOST_TEST(r.faults.count(name) == 1u, name << " never injected");
  }
  BOOST_TEST(r.checkpoints >= 50u);
  BOOST_TEST(r.acknowledged > 0u);
  BOOST_TEST(r.epochs >= 2u, "no failover changed the epoch");
}

}  // namespace
}  // namespace vnvram::testing
