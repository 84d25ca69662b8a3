// Crash injection on real processes (issue 8): a guest process
// (vnvram-journal append --ack --auto-trim --verify) opens the device,
// replays and checks the journal, then appends batches of deterministic
// records and commits them, printing "ack <seq>" after each commit returned
// (the acknowledged log). The test kills it with SIGKILL at a random point
// -- after a random number of acknowledgements plus a random spin, or
// early, while it opens or replays -- thousands of times. The next writer's
// replay, and a final one, must return exactly the committed prefix: every
// acknowledged record, nothing past the batch that was in flight, ending on
// a batch boundary, each payload byte-exact (tests/journal_crash_model.h).
//
// The device is local (one sim host: vnvram-xenstored and vnvramd as child
// processes), so what the killed writer stored is in the backend's memory
// whether or not it was persisted: torn records and superblocks are what
// the kills leave. Kills of the backend (a replicated volume failing over)
// are in journal_failover_crash_test.
//
// VNVRAM_JOURNAL_CRASH_SEED sets the random seed (printed), and
// VNVRAM_JOURNAL_CRASH_KILLS the number of kills (default below, chosen so
// that the test runs in about 45 s on two cores).
#define BOOST_TEST_MODULE journal_crash
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <random>
#include <string>
#include <vector>

#include "journal/replay_check.h"
#include "tests/journal_crash_model.h"
#include "tests/journal_crash_support.h"
#include "tests/sim_host.h"
#include "vnvram/journal.hpp"
#include "vnvram/vnvram.hpp"

namespace vnvram {
namespace {

using testing::Host;
using testing::JournalCrashModel;

constexpr uint64_t kDefaultKills = 2000;
std::vector<std::string> Range() {
  return {"--offset", "0", "--length", "64K"};
}
std::vector<std::string> Sizes() {
  return {"--size", "1", "--max-size", "600"};
}

BOOST_AUTO_TEST_CASE(AWriterKilledAtRandomPointsReplaysExactlyTheCommittedPrefix) {
  const uint64_t seed = testing::CrashSeed();
  const uint64_t kills = testing::EnvCount("VNVRAM_JOURNAL_CRASH_KILLS", kDefaultKills);
  BOOST_TEST_MESSAGE("seed " << seed << " (VNVRAM_JOURNAL_CRASH_SEED), " << kills << " kills");
  std::mt19937_64 rng(seed);
  Host h;
  h.Attach(0, "1M");
  const std::vector<std::string> base = {testing::Bin("vnvram-journal"), "--platform", h.Dom1()};
  auto fmt = testing::RunJournalTool(base, Range(), {"format"});
  BOOST_TEST_REQUIRE(fmt.exit_code == 0, fmt.out);

  JournalCrashModel model;
  testing::CrashStats stats;
  const auto t0 = std::chrono::steady_clock::now();
  for (uint64_t i = 0; i < kills; ++i) {
    const uint64_t batch = 1 + rng() % 8;
    testing::KillPlan plan;
    if (rng() % 16 == 0) {
      plan.early = true;  // while it starts, opens or replays
      plan.spin = std::chrono::microseconds(rng() % 25000);
    } else {
      plan.acks = rng() % 12;
      plan.spin = std::chrono::microseconds(rng() % 400);
    }
    std::vector<std::string> args = {
        "append", "--count",     "1000000000", "--batch", std::to_string(batch),
        "--ack",  "--auto-trim", "--verify"};
    const auto sizes = Sizes();
    args.insert(args.end(), sizes.begin(), sizes.end());
    auto w = testing::SpawnJournalTool(base, Range(), args);
    model.WriterStarted(batch);
    std::string why;
    const bool ok = testing::RunUntilKill(*w, plan, model, &stats, &why);
    BOOST_TEST_REQUIRE(ok, "kill " << i << " (seed " << seed << "): " << why << "\n"
                                   << testing::Tail(w->transcript()) << h.BackendLog());
    model.WriterKilled();
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  // A last replay by a process that only replays, then one in this process.
  std::vector<std::string> replay = {"replay", "--verify"};
  const auto sizes = Sizes();
  replay.insert(replay.end(), sizes.begin(), sizes.end());
  auto r = testing::RunJournalTool(base, Range(), replay);
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.out);
  std::string why;
  const std::string line = testing::LineStarting(r.out, "replayed ");
  BOOST_TEST_REQUIRE(model.Line(line, &why), why);
  testing::CheckInProcess(h.Dom1(), {}, 0, 64 << 10, journal::SizeRange{1, 600}, line);

  BOOST_TEST(model.replays() > kills / 2, model.replays() << " replays for " << kills << " kills");
  BOOST_TEST(stats.killed_after_replay > kills / 2);
  BOOST_TEST_MESSAGE(
      kills << " kills in " << secs << " s (" << secs * 1000 / kills << " ms each): " << stats.early
            << " early, " << stats.killed_after_replay << " after the replay, " << model.acks()
            << " commits acknowledged, " << model.replays()
            << " replays checked (batch in flight at the kill: kept " << model.in_flight_kept()
            << ", lost " << model.in_flight_lost() << "; trim in flight: kept "
            << model.trims_kept() << ", lost " << model.trims_lost() << "), last sequence "
            << model.max_end() << "; " << line);
}

}  // namespace
}  // namespace vnvram
