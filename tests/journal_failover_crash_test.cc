// Crash injection with failover (issue 8): the journal on a replicated
// volume reached over two paths (tests/multipath_host.h: one sim host, a
// guest with path 0 through dom0's vnvramd "a0" and path 1 through driver
// domain 2's vnvramd "a1", a third replica "w"). A vnvram-journal writer
// appends and commits through the active path; the test kills the
// volume's primary backend with SIGKILL at a random point, and either
//   - lets the writer fail over by itself and go on (its journal follows
//     the Device to the new mapping), then kills the writer, or
//   - kills the writer together with the primary,
// then replays on the failover target in a new process: exactly the
// committed prefix, as in journal_crash_test (tests/journal_crash_model.h).
// The killed backend is restarted, resynchronised, and the next round
// kills the other one. VNVRAM_JOURNAL_CRASH_SEED sets the seed (printed),
// VNVRAM_JOURNAL_FAILOVER_KILLS the number of rounds.
#define BOOST_TEST_MODULE journal_failover_crash
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <random>
#include <string>
#include <vector>

#include "tests/journal_crash_model.h"
#include "tests/journal_crash_support.h"
#include "tests/multipath_host.h"

namespace vnvram {
namespace {

using testing::JournalCrashModel;
using testing::MultipathHost;
using testing::MultipathSpec;
namespace rk = schema::repl;

constexpr uint64_t kDefaultRounds = 30;
std::vector<std::string> Range() {
  return {"--offset", "0", "--length", "256K"};
}
std::vector<std::string> Sizes() {
  return {"--size", "1", "--max-size", "600"};
}

BOOST_AUTO_TEST_CASE(KillsOfThePrimaryBackendReplayTheCommittedPrefixOnTheFailoverTarget) {
  const uint64_t seed = testing::CrashSeed();
  const uint64_t rounds = testing::EnvCount("VNVRAM_JOURNAL_FAILOVER_KILLS", kDefaultRounds);
  BOOST_TEST_MESSAGE("seed " << seed << " (VNVRAM_JOURNAL_CRASH_SEED), " << rounds << " rounds");
  std::mt19937_64 rng(seed);
  MultipathHost h(MultipathSpec{});
  h.StartAll();
  h.WaitHealthy("a0");
  h.Attach(0, 0, 2);
  h.Attach(1, 2, 1);
  const std::vector<std::string> base = {testing::ClusterBin("vnvram-journal"),
                                         "--platform",
                                         h.Dom(1),
                                         "--volume",
                                         h.volume(),
                                         "--timeout-ms",
                                         "20000"};
  auto fmt = testing::RunJournalTool(base, Range(), {"format"});
  BOOST_TEST_REQUIRE(fmt.exit_code == 0, fmt.out);

  JournalCrashModel model;
  std::string primary = "a0", target = "a1";
  std::vector<std::string> replay = {"replay", "--verify"};
  const auto sizes = Sizes();
  replay.insert(replay.end(), sizes.begin(), sizes.end());
  std::string last_replay;
  uint64_t remaps = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (uint64_t i = 0; i < rounds; ++i) {
    const uint64_t batch = 1 + rng() % 8;
    std::vector<std::string> args = {
        "append", "--count",     "1000000000", "--batch", std::to_string(batch),
        "--ack",  "--auto-trim", "--verify"};
    const auto sizes = Sizes();
    args.insert(args.end(), sizes.begin(), sizes.end());
    auto w = testing::SpawnJournalTool(base, Range(), args);
    model.WriterStarted(batch);
    bool replayed = false;
    std::string why;
    BOOST_TEST_REQUIRE(testing::ReadAcks(*w, model, 20 + rng() % 200, &replayed, &why),
                       why << "\n"
                           << testing::Tail(w->transcript()) << h.Logs());
    testing::Spin(std::chrono::microseconds(rng() % 400));
    const bool writer_goes_on = i % 2 == 0;
    if (writer_goes_on) {
      h.Kill(primary);
      // The writer fails over to the other path and acknowledges more. The
      // acknowledgements already in the pipe may predate the kill: read up
      // to its re-map first (bounded: the writer cannot acknowledge on the
      // dead primary for ever), then more on the new path.
      const auto give_up = std::chrono::steady_clock::now() + testing::kCrashWait;
      while (w->transcript().find("remapped gen=") == std::string::npos &&
             std::chrono::steady_clock::now() < give_up) {
        BOOST_TEST_REQUIRE(testing::ReadAcks(*w, model, 1, &replayed, &why),
                           "round " << i << " (seed " << seed << "): " << why << "\n"
                                    << testing::Tail(w->transcript()) << h.Logs());
      }
      BOOST_TEST_REQUIRE(w->transcript().find("remapped gen=") != std::string::npos,
                         testing::Tail(w->transcript()));
      BOOST_TEST_REQUIRE(testing::ReadAcks(*w, model, 20 + rng() % 50, &replayed, &why),
                         "round " << i << " (seed " << seed << "): " << why << "\n"
                                  << testing::Tail(w->transcript()) << h.Logs());
      ++remaps;
    } else {
      BOOST_TEST_REQUIRE(w->Kill().ok());
      h.Kill(primary);
    }
    BOOST_TEST_REQUIRE(testing::KillAndDrain(*w, model, &replayed, &why),
                       "round " << i << " (seed " << seed << "): " << why << "\n"
                                << testing::Tail(w->transcript()) << h.Logs());
    model.WriterKilled();

    // A new process replays on the failover target.
    auto r = testing::RunJournalTool(base, Range(), replay);
    BOOST_TEST_REQUIRE(r.exit_code == 0, r.out << h.Logs());
    last_replay = testing::LineStarting(r.out, "replayed ");
    BOOST_TEST_REQUIRE(model.Line(last_replay, &why), "round " << i << " (seed " << seed
                                                               << "): " << why << "\n"
                                                               << h.Logs());
    BOOST_TEST(h.Repl(target, rk::kRole) == rk::kRolePrimary);
    BOOST_TEST_MESSAGE("round " << i << (writer_goes_on ? ": writer failed over, " : ": ")
                                << "replay on " << target << ": " << last_replay);
    // The killed backend comes back as a replica and is resynchronised.
    h.Start(primary);
    h.WaitHealthy(target);
    std::swap(primary, target);
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  testing::CheckInProcess(h.Dom(1), h.volume(), 0, 256 << 10, journal::SizeRange{1, 600},
                          last_replay);
  BOOST_TEST(model.replays() == 2 * rounds, "each writer and each replay process replayed");
  BOOST_TEST_MESSAGE(rounds << " primary kills in " << secs << " s (" << remaps
                            << " with the writer failing over), " << model.acks()
                            << " commits acknowledged, batch in flight kept "
                            << model.in_flight_kept() << " lost " << model.in_flight_lost()
                            << ", last sequence " << model.max_end());
}

}  // namespace
}  // namespace vnvram
