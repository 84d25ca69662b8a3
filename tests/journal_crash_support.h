// Test support for the journal crash tests (journal_crash_test,
// journal_failover_crash_test): runs vnvram-journal as a child process,
// follows its lines into a JournalCrashModel, kills it (SIGKILL) after a
// number of acknowledgements plus a random spin, drains what it printed
// before it died, and checks a replay in this process against a tool's
// summary line. Waits are on the child's output pipe and its pidfd with
// deadlines; the only timed wait is KillPlan's spin, a busy loop of at most
// a few milliseconds that moves the kill to a random point of the writer's
// work (it waits for nothing). Uses Boost.Test; not thread-safe.
#pragma once

#include <signal.h>

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "common/parse.h"
#include "journal/replay_check.h"
#include "platform/sim/xenstored/testing/xenstored_process.h"
#include "tests/child_process.h"
#include "tests/journal_crash_model.h"
#include "vnvram/journal.hpp"
#include "vnvram/vnvram.hpp"

namespace vnvram::testing {

inline constexpr std::chrono::milliseconds kCrashWait{30000};

// $VNVRAM_JOURNAL_CRASH_SEED, else a random seed.
inline uint64_t CrashSeed() {
  if (const char* s = std::getenv("VNVRAM_JOURNAL_CRASH_SEED")) {
    auto v = ParseU64(s, "VNVRAM_JOURNAL_CRASH_SEED");
    BOOST_TEST_REQUIRE(v.ok(), v.status().ToString());
    return *v;
  }
  std::random_device rd;
  return (uint64_t{rd()} << 32) | rd();
}

// $name as a count, else `fallback`.
inline uint64_t EnvCount(const char* name, uint64_t fallback) {
  if (const char* s = std::getenv(name)) {
    auto v = ParseU64InRange(s, 1, 1'000'000, name);
    BOOST_TEST_REQUIRE(v.ok(), v.status().ToString());
    return *v;
  }
  return fallback;
}

inline std::string Tail(const std::string& s, size_t n = 3000) {
  return s.size() > n ? "...\n" + s.substr(s.size() - n) : s;
}

// The first line of `text` starting with `prefix` ("" when none).
inline std::string LineStarting(const std::string& text, const std::string& prefix) {
  size_t at = 0;
  while (at < text.size()) {
    const size_t nl = text.find('\n', at);
    const std::string line = text.substr(at, nl == std::string::npos ? nl : nl - at);
    if (line.rfind(prefix, 0) == 0) return line;
    if (nl == std::string::npos) break;
    at = nl + 1;
  }
  return "";
}

inline std::vector<std::string> JournalArgv(const std::vector<std::string>& base,
                                            const std::vector<std::string>& range,
                                            const std::vector<std::string>& args) {
  std::vector<std::string> argv = base;
  argv.insert(argv.end(), range.begin(), range.end());
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

// Runs vnvram-journal to completion.
inline sim::testing::ProgramResult RunJournalTool(const std::vector<std::string>& base,
                                                  const std::vector<std::string>& range,
                                                  const std::vector<std::string>& args) {
  auto r = sim::testing::RunProgram(JournalArgv(base, range, args), {}, kCrashWait);
  BOOST_TEST_REQUIRE(r.ok(), r.status().ToString());
  return *r;
}

inline std::unique_ptr<ChildProcess> SpawnJournalTool(const std::vector<std::string>& base,
                                                      const std::vector<std::string>& range,
                                                      const std::vector<std::string>& args) {
  auto c = ChildProcess::Spawn(JournalArgv(base, range, args));
  BOOST_TEST_REQUIRE(c.ok(), c.status().ToString());
  return std::move(c).value();
}

// Busy-waits `d` (see the header comment: it only randomises the kill).
inline void Spin(std::chrono::microseconds d) {
  const auto end = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < end) {
  }
}

struct KillPlan {
  bool early = false;  // kill after the spin alone, whatever the writer does
  uint64_t acks = 0;   // else after its replay and this many acknowledgements
  std::chrono::microseconds spin{0};
};

struct CrashStats {
  uint64_t early = 0;
  uint64_t killed_after_replay = 0;
};

// Reads the writer's lines into `model` until it has replayed and printed
// `acks` more acknowledgements. False with *why when it ended or failed.
inline bool ReadAcks(ChildProcess& w, JournalCrashModel& model, uint64_t acks, bool* replayed,
                     std::string* why, std::chrono::milliseconds deadline = kCrashWait) {
  uint64_t seen = 0;
  while (!*replayed || seen < acks) {
    auto line = w.NextLine(deadline);
    if (!line.ok()) {
      *why = "the writer stopped before its acknowledgements: " + line.status().ToString();
      return false;
    }
    if (!model.Line(*line, why)) return false;
    if (line->rfind("replayed ", 0) == 0) *replayed = true;
    if (line->rfind("ack ", 0) == 0) ++seen;
  }
  return true;
}

// SIGKILL, then every line it printed before it died, then its exit.
inline bool KillAndDrain(ChildProcess& w, JournalCrashModel& model, bool* replayed,
                         std::string* why) {
  if (Status s = w.Kill(); !s.ok()) {
    *why = s.ToString();
    return false;
  }
  for (;;) {
    auto line = w.NextLine(kCrashWait);
    if (!line.ok()) {
      if (line.status().code() == Code::kUnavailable) break;  // EOF: it is gone
      *why = "draining the killed writer: " + line.status().ToString();
      return false;
    }
    if (!model.Line(*line, why)) return false;
    if (line->rfind("replayed ", 0) == 0) *replayed = true;
  }
  auto rc = w.Wait(kCrashWait);
  if (!rc.ok() || *rc != -SIGKILL) {
    *why = "the writer exited " + (rc.ok() ? std::to_string(*rc) : rc.status().ToString()) +
           " instead of being killed";
    return false;
  }
  return true;
}

// One writer's life: acknowledgements, a spin, the kill.
inline bool RunUntilKill(ChildProcess& w, const KillPlan& plan, JournalCrashModel& model,
                         CrashStats* stats, std::string* why) {
  bool replayed = false;
  if (!plan.early && !ReadAcks(w, model, plan.acks, &replayed, why)) return false;
  Spin(plan.spin);
  if (!KillAndDrain(w, model, &replayed, why)) return false;
  if (plan.early) ++stats->early;
  if (replayed) ++stats->killed_after_replay;
  return true;
}

// Replays the journal in this process (a Device of `platform`, by devid 0
// or by `volume`) and checks it against a tool's "replayed" summary line:
// the same records, every payload its pattern.
inline void CheckInProcess(const std::string& platform, const std::string& volume, uint64_t offset,
                           uint64_t length, journal::SizeRange range, const std::string& summary) {
  OpenOptions o;
  o.platform = platform;
  o.volume = volume;
  o.timeout = kCrashWait;
  auto d = Device::Open(o);
  BOOST_TEST_REQUIRE(d.ok(), d.status().ToString());
  journal::ReplayCheck check(true, range);
  auto j = Journal::Open(**d, offset, length, check.Callback());
  BOOST_TEST_REQUIRE(j.ok(), j.status().ToString());
  check.Finish((*j)->head_sequence(), (*j)->next_sequence());
  BOOST_TEST(check.mismatches() == 0u,
             (check.messages().empty() ? std::string() : check.messages().front()));
  const auto m = ParseSummary(summary);
  BOOST_TEST(check.records() == SummaryU64(m, "records"), summary);
  BOOST_TEST(check.first() == SummaryU64(m, "first"), summary);
  BOOST_TEST(check.last() == SummaryU64(m, "last"), summary);
  BOOST_TEST((*j)->head_sequence() == SummaryU64(m, "head"), summary);
  j->reset();
  BOOST_TEST((*d)->close().ok());
}

}  // namespace vnvram::testing
