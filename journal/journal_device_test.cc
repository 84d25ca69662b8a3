// The journal on a real device: this test process is guest domain 1 of a
// sim host whose vnvram-xenstored and vnvramd are child processes
// (tests/sim_host.h). vnvram::Journal in a range of the region (and
// nothing outside it touched), its argument checks and errors, a journal
// that follows the mapping when the backend restarts, JournalWriter's group
// commit from several threads, the C API (a C program) and vnvram-journal's
// commands and output. Waits are on events with deadlines; nothing sleeps.
#define BOOST_TEST_MODULE journal_device
#include <boost/test/unit_test.hpp>
#include <cstring>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "journal/payload_pattern.h"
#include "journal/replay_check.h"
#include "tests/journal_crash_model.h"
#include "tests/sim_host.h"
#include "vnvram/journal.hpp"
#include "vnvram/journal_writer.hpp"
#include "vnvram/vnvram.hpp"

namespace vnvram {
namespace {

using journal::FillPattern;
using journal::ReplayCheck;
using testing::Host;
using testing::kWait;

const JournalUuid kUuid = {std::byte{0x4A}, std::byte{0x52}, std::byte{0x4E}, std::byte{0x4C}};

std::unique_ptr<Device> OpenDev(Host& h) {
  OpenOptions o;
  o.platform = h.Dom1();
  o.devid = 0;
  o.timeout = std::chrono::seconds(10);
  auto d = Device::Open(o);
  BOOST_TEST_REQUIRE(d.ok(), d.status().ToString() << "\n" << h.BackendLog());
  return std::move(d).value();
}

std::unique_ptr<Journal> OpenJournal(Device& d, uint64_t off, uint64_t len,
                                     const JournalRecordFn& fn = nullptr) {
  auto j = Journal::Open(d, off, len, fn);
  BOOST_TEST_REQUIRE(j.ok(), j.status().ToString());
  return std::move(j).value();
}

std::vector<std::byte> Pattern(uint64_t seq, size_t size) {
  std::vector<std::byte> b(size);
  FillPattern(seq, b);
  return b;
}

// Appends `n` pattern records of `size` bytes, each committed alone.
void AppendPattern(Journal& j, uint64_t n, size_t size) {
  for (uint64_t i = 0; i < n; ++i) {
    const uint64_t seq = j.next_sequence();
    auto s = j.append(Pattern(seq, size));
    BOOST_TEST_REQUIRE(s.ok(), s.status().ToString());
    BOOST_TEST_REQUIRE(*s == seq);
    Status c = j.commit();
    BOOST_TEST_REQUIRE(c.ok(), c.ToString());
  }
}

// A fresh Device (the first one closed) replays the journal and checks
// every record against its pattern.
ReplayCheck ReplayFresh(Host& h, uint64_t off, uint64_t len, uint64_t* head, uint64_t* next) {
  auto d = OpenDev(h);
  ReplayCheck check(true, std::nullopt);
  auto j = OpenJournal(*d, off, len, check.Callback());
  check.Finish(j->head_sequence(), j->next_sequence());
  *head = j->head_sequence();
  *next = j->next_sequence();
  j.reset();
  BOOST_TEST(d->close().ok());
  return check;
}

BOOST_AUTO_TEST_CASE(AJournalInARangeReplaysItsCommittedRecordsAndTouchesNothingElse) {
  Host h;
  h.Attach(0, "1M");
  constexpr uint64_t kOff = 64 << 10, kLen = 256 << 10;
  {
    auto d = OpenDev(h);
    // Bytes around the journal's range that must survive it.
    std::span<std::byte> r = d->region();
    std::memset(r.data(), 0xA1, kOff);
    std::memset(r.data() + kOff + kLen, 0xB2, r.size() - kOff - kLen);
    BOOST_TEST_REQUIRE(d->persist(0, r.size()).ok());

    BOOST_TEST_REQUIRE(Journal::Format(*d, kOff, kLen, kUuid).ok());
    uint64_t replayed = 0;
    auto j = OpenJournal(*d, kOff, kLen, [&](const JournalRecord&) { ++replayed; });
    BOOST_TEST(replayed == 0u);
    BOOST_TEST(j->head_sequence() == 1u);
    BOOST_TEST(j->next_sequence() == 1u);
    BOOST_TEST(j->committed_sequence() == 0u);
    BOOST_TEST(j->log_size() == kLen - 4096);
    BOOST_TEST(j->free_bytes() == kLen - 4096);
    BOOST_TEST(j->offset() == kOff);
    BOOST_TEST(j->length() == kLen);

    AppendPattern(*j, 100, 200);
    // A batch: consecutive sequences, one commit.
    std::vector<std::vector<std::byte>> bufs;
    for (uint64_t s = 101; s <= 105; ++s) bufs.push_back(Pattern(s, 10 * s));
    std::vector<std::span<const std::byte>> spans(bufs.begin(), bufs.end());
    const uint64_t durable = d->durable_seq();
    auto first = j->append_batch(spans);
    BOOST_TEST_REQUIRE(first.ok(), first.status().ToString());
    BOOST_TEST(*first == 101u);
    BOOST_TEST(j->committed_sequence() == 100u);
    BOOST_TEST_REQUIRE(j->commit().ok());
    BOOST_TEST(j->committed_sequence() == 105u);
    BOOST_TEST(d->durable_seq() == durable + 1, "one commit is one persist");
    BOOST_TEST(j->commit().ok());  // nothing new: no persist
    BOOST_TEST(d->durable_seq() == durable + 1);
    // Appended, never committed: not replayed.
    BOOST_TEST_REQUIRE(j->append(Pattern(106, 50)).ok());
    j.reset();
    BOOST_TEST(d->close().ok());
  }
  uint64_t head = 0, next = 0;
  ReplayCheck c = ReplayFresh(h, kOff, kLen, &head, &next);
  BOOST_TEST(c.mismatches() == 0u, (c.messages().empty() ? "" : c.messages().front()));
  BOOST_TEST(c.records() == 105u);
  BOOST_TEST(c.first() == 1u);
  BOOST_TEST(c.last() == 105u);
  BOOST_TEST(next == 106u);

  // Trim, and what is outside the range is as it was.
  auto d = OpenDev(h);
  auto j = OpenJournal(*d, kOff, kLen);
  BOOST_TEST((j->trim(106).code() == Code::kOutOfRange));
  BOOST_TEST_REQUIRE(j->trim(60).ok());
  BOOST_TEST(j->head_sequence() == 61u);
  BOOST_TEST(j->trim(10).ok());  // below the head: nothing to do
  j.reset();
  std::span<std::byte> r = d->region();
  bool around_intact = true;
  for (uint64_t i = 0; i < kOff; ++i) around_intact &= r[i] == std::byte{0xA1};
  for (uint64_t i = kOff + kLen; i < r.size(); ++i) around_intact &= r[i] == std::byte{0xB2};
  BOOST_TEST(around_intact);
  BOOST_TEST(d->close().ok());
  ReplayCheck trimmed = ReplayFresh(h, kOff, kLen, &head, &next);
  BOOST_TEST(trimmed.mismatches() == 0u);
  BOOST_TEST(trimmed.records() == 45u);
  BOOST_TEST(trimmed.first() == 61u);
  BOOST_TEST(head == 61u);
}

BOOST_AUTO_TEST_CASE(BadRangesBadRecordsAndAFullLogAreErrorValues) {
  Host h;
  h.Attach(0, "256K");
  auto d = OpenDev(h);
  const uint64_t size = d->size();
  for (auto [off, len] : std::vector<std::pair<uint64_t, uint64_t>>{{4, 16384},
                                                                    {0, 16388},
                                                                    {0, 4096},
                                                                    {size - 8192, 16384},
                                                                    {UINT64_MAX - 7, 16384},
                                                                    {0, size + 8}}) {
    Status s = Journal::Format(*d, off, len, kUuid);
    BOOST_TEST((s.code() == Code::kInvalidArgument), off << "+" << len << ": " << s.ToString());
    BOOST_TEST((Journal::Open(*d, off, len, nullptr).status().code() == Code::kInvalidArgument));
  }
  // Nothing formatted there.
  auto none = Journal::Open(*d, 0, 16384, nullptr);
  BOOST_TEST((none.status().code() == Code::kCorruption), none.status().ToString());

  BOOST_TEST_REQUIRE(Journal::Format(*d, 0, 16384, kUuid).ok());
  auto j = OpenJournal(*d, 0, 16384);
  const std::vector<std::byte> big(12289);
  BOOST_TEST((j->append(big).status().code() == Code::kInvalidArgument));
  BOOST_TEST((j->append_batch({}).status().code() == Code::kInvalidArgument));
  // A batch that does not fit is refused whole: nothing appended.
  std::vector<std::byte> rec(3000);
  std::vector<std::span<const std::byte>> five(5, std::span<const std::byte>(rec));
  auto r = j->append_batch(five);
  BOOST_TEST((r.status().code() == Code::kResourceExhausted), r.status().ToString());
  BOOST_TEST(j->next_sequence() == 1u);
  std::vector<std::span<const std::byte>> four(4, std::span<const std::byte>(rec));
  BOOST_TEST_REQUIRE(j->append_batch(four).ok());
  BOOST_TEST((j->append(rec).status().code() == Code::kResourceExhausted));
  BOOST_TEST((j->trim(1).code() == Code::kOutOfRange));  // not committed yet
  BOOST_TEST_REQUIRE(j->commit().ok());
  BOOST_TEST_REQUIRE(j->trim(2).ok());
  BOOST_TEST_REQUIRE(j->append(rec).ok());  // wraps after the trim
  BOOST_TEST_REQUIRE(j->commit().ok());
  BOOST_TEST(j->head_sequence() == 3u);
  BOOST_TEST(j->committed_sequence() == 5u);

  // A closed device: the journal reports it instead of storing anywhere.
  BOOST_TEST(d->close().ok());
  BOOST_TEST((j->append(rec).status().code() == Code::kUnavailable));
  BOOST_TEST((j->commit().code() == Code::kUnavailable));
}

// The backend dies and a new instance comes up with new grants: the Device
// re-maps the region at a new address inside the next call (generation 2)
// -- here inside commit(), possibly already in its region() call, before
// the commit flag is stored. Everything stored after the switch must land
// in the new mapping: a journal that kept the old span would store the
// commit flag and the later records where the device no longer looks, and
// the fresh replay below would miss them.
BOOST_AUTO_TEST_CASE(TheJournalFollowsTheMappingWhenTheBackendRestarts) {
  Host h;
  h.Attach(0, "1M");
  constexpr uint64_t kLen = 128 << 10;  // a log of 124 KiB: 323 records of 392 bytes
  constexpr size_t kPayload = 350;
  {
    auto d = OpenDev(h);
    BOOST_TEST_REQUIRE(Journal::Format(*d, 0, kLen, kUuid).ok());
    auto j = OpenJournal(*d, 0, kLen);
    AppendPattern(*j, 50, kPayload);
    const std::byte* old_base = d->region().data();
    h.backend->Kill();  // no vault, state left Connected
    // Stored into the old mapping, which the re-map carries over.
    BOOST_TEST_REQUIRE(j->append(Pattern(51, kPayload)).ok());
    h.StartBackend();
    Status c = j->commit();  // the re-handshake happens inside this call
    BOOST_TEST_REQUIRE(c.ok(), c.ToString() << "\n" << h.BackendLog());
    BOOST_TEST_REQUIRE(d->generation() == 2u);
    BOOST_TEST(d->region().data() != old_base);
    // From here on only the new mapping reaches the device; the log wraps.
    AppendPattern(*j, 200, kPayload);
    BOOST_TEST_REQUIRE(j->trim(40).ok());
    AppendPattern(*j, 100, kPayload);
    BOOST_TEST(j->committed_sequence() == 351u);
    j.reset();
    BOOST_TEST(d->close().ok());
  }
  uint64_t head = 0, next = 0;
  ReplayCheck c = ReplayFresh(h, 0, kLen, &head, &next);
  BOOST_TEST(c.mismatches() == 0u, (c.messages().empty() ? "" : c.messages().front()));
  BOOST_TEST(c.first() == 41u);
  BOOST_TEST(c.last() == 351u);
  BOOST_TEST(c.records() == 311u);
}

// Eight threads write through one JournalWriter; each write returns with
// its record committed; the commits are shared (fewer than the records);
// a thread that finds the log full trims. A fresh replay has every record
// a thread was told is durable, byte for byte.
BOOST_AUTO_TEST_CASE(GroupCommitFromEightThreads) {
  Host h;
  h.Attach(0, "1M");
  constexpr uint64_t kLen = 64 << 10;
  constexpr int kThreads = 8;
  constexpr int kPerThread = 250;
  std::map<uint64_t, std::vector<std::byte>> written;  // seq -> payload
  uint64_t head = 0;
  JournalWriter::Stats stats;
  {
    auto d = OpenDev(h);
    BOOST_TEST_REQUIRE(Journal::Format(*d, 0, kLen, kUuid).ok());
    auto j = OpenJournal(*d, 0, kLen);
    JournalWriter w(*j);
    std::mutex mu;
    std::vector<std::string> failures;
    std::vector<std::thread> threads;
    threads.reserve(kThreads);
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        uint64_t prev = 0;
        for (int i = 0; i < kPerThread; ++i) {
          // A payload naming its writer; every third call a batch of two.
          std::vector<std::byte> a(40 + (i % 50)), b(24);
          std::snprintf(reinterpret_cast<char*>(a.data()), a.size(), "thread %d record %d", t, i);
          std::snprintf(reinterpret_cast<char*>(b.data()), b.size(), "thread %d extra %d", t, i);
          const std::span<const std::byte> both[2] = {a, b};
          const bool batch = i % 3 == 0;
          Result<uint64_t> seq = Status::Internal("unset");
          for (int attempt = 0; attempt < 100; ++attempt) {
            seq = batch ? w.write_batch(both) : w.write(a);
            if (seq.status().code() != Code::kResourceExhausted) break;
            // Full: drop everything committed but the newest 20 records.
            (void)w.with_journal([](Journal& jj) {
              const uint64_t c = jj.committed_sequence();
              return c > jj.head_sequence() + 20 ? jj.trim(c - 20) : Status::Ok();
            });
          }
          std::lock_guard lock(mu);
          if (!seq.ok()) {
            failures.push_back(seq.status().ToString());
            return;
          }
          // Durable on return: committed, and after this thread's last one.
          uint64_t committed = 0;
          (void)w.with_journal([&](Journal& jj) {
            committed = jj.committed_sequence();
            return Status::Ok();
          });
          const uint64_t last = *seq + (batch ? 1 : 0);
          if (committed < last || *seq <= prev) {
            failures.push_back("thread " + std::to_string(t) + ": seq " + std::to_string(*seq) +
                               " committed " + std::to_string(committed) + " prev " +
                               std::to_string(prev));
          }
          prev = last;
          written[*seq] = a;
          if (batch) written[*seq + 1] = b;
        }
      });
    }
    for (auto& th : threads) th.join();
    BOOST_TEST_REQUIRE(failures.empty(), (failures.empty() ? std::string() : failures.front()));
    stats = w.stats();
    head = j->head_sequence();
    BOOST_TEST(j->committed_sequence() == written.rbegin()->first);
  }
  const uint64_t calls = kThreads * kPerThread;
  BOOST_TEST(written.size() == calls + (kPerThread + 2) / 3 * kThreads);
  BOOST_TEST(stats.records == written.size());
  BOOST_TEST(stats.commits < calls, stats.commits << " commits for " << calls << " writes");
  BOOST_TEST(stats.largest_group > 1u);
  BOOST_TEST_MESSAGE("group commit: " << calls << " writes (" << stats.records << " records) in "
                                      << stats.commits << " commits, largest group "
                                      << stats.largest_group);
  // Sequences are dense: every one from 1 to the last was handed out.
  BOOST_TEST(written.begin()->first == 1u);
  BOOST_TEST(written.rbegin()->first == written.size());

  auto d = OpenDev(h);
  uint64_t replayed = 0, bad = 0;
  auto j = OpenJournal(*d, 0, kLen, [&](const JournalRecord& r) {
    ++replayed;
    auto it = written.find(r.sequence);
    if (it == written.end() || it->second.size() != r.payload.size() ||
        std::memcmp(it->second.data(), r.payload.data(), r.payload.size()) != 0) {
      ++bad;
    }
  });
  BOOST_TEST(bad == 0u);
  BOOST_TEST(j->head_sequence() == head);
  BOOST_TEST(replayed == written.rbegin()->first - head + 1);
}

BOOST_AUTO_TEST_CASE(TheCApiFromAProgramBuiltAsC) {
  Host h;
  h.Attach(0, "1M");
  auto r = sim::testing::RunProgram(
      {std::string(VNVRAM_BIN_DIR) + "/../tests/vnvram_journal_c_smoke", h.Dom1(), "0"}, {}, kWait);
  BOOST_TEST_REQUIRE(r.ok(), r.status().ToString());
  BOOST_TEST(r->exit_code == 0, r->out);
  BOOST_TEST(r->out.find("journal_c_smoke: ok") != std::string::npos, r->out);
  BOOST_TEST_MESSAGE(r->out);
}

// vnvram-journal as a guest program.
struct Tool {
  explicit Tool(Host& host) : h(host) {}
  // With the journal's range (8 KiB + 192 KiB) unless `range` is false.
  sim::testing::ProgramResult Run(std::vector<std::string> args, bool range = true) {
    std::vector<std::string> argv{testing::Bin("vnvram-journal"), "--platform", h.Dom1()};
    if (range) {
      for (const char* a : {"--offset", "8192", "--length", "192K"}) argv.emplace_back(a);
    }
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = sim::testing::RunProgram(argv, {}, kWait);
    BOOST_TEST_REQUIRE(r.ok(), r.status().ToString());
    return *r;
  }
  // The summary line starting with `word`.
  std::map<std::string, std::string> Summary(const sim::testing::ProgramResult& r,
                                             const std::string& word) {
    std::istringstream in(r.out);
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind(word + " ", 0) == 0) return testing::ParseSummary(line);
    }
    BOOST_FAIL("no '" << word << "' line in:\n" << r.out);
    return {};
  }
  Host& h;
};

BOOST_AUTO_TEST_CASE(TheToolFormatsAppendsReplaysAndTrims) {
  Host h;
  h.Attach(0, "1M");
  Tool t(h);
  auto r = t.Run({"format", "--uuid", "3e0b6d2a-1f4c-4a5b-8c7d-9e0f1a2b3c4d"});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.out);
  auto m = t.Summary(r, "formatted");
  BOOST_TEST(m["offset"] == "8192");
  BOOST_TEST(m["length"] == "196608");
  BOOST_TEST(m["uuid"] == "3e0b6d2a-1f4c-4a5b-8c7d-9e0f1a2b3c4d");

  r = t.Run(
      {"append", "--count", "500", "--batch", "7", "--size", "16", "--max-size", "300", "--ack"});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.out);
  m = t.Summary(r, "replayed");
  BOOST_TEST(m["records"] == "0");
  m = t.Summary(r, "appended");
  BOOST_TEST(m["records"] == "500");
  BOOST_TEST(m["first"] == "1");
  BOOST_TEST(m["last"] == "500");
  BOOST_TEST(m["commits"] == "72");  // 71 batches of 7 and one of 3
  BOOST_TEST(r.out.find("ack 7\n") != std::string::npos);
  BOOST_TEST(r.out.find("ack 500\n") != std::string::npos);

  r = t.Run({"replay", "--verify", "--size", "16", "--max-size", "300"});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.out);
  m = t.Summary(r, "replayed");
  BOOST_TEST(m["records"] == "500");
  BOOST_TEST(m["first"] == "1");
  BOOST_TEST(m["last"] == "500");
  BOOST_TEST(m["verified"] == "yes");
  BOOST_TEST(testing::SummaryU64(m, "replay_us") != UINT64_MAX);
  BOOST_TEST(testing::SummaryU64(m, "open_us") != UINT64_MAX);

  // Wrong sizes are mismatches: exit 1, one line per bad record (at most 10).
  r = t.Run({"replay", "--verify", "--size", "17"});
  BOOST_TEST(r.exit_code == 1, r.out);
  BOOST_TEST(r.out.find("mismatch seq=") != std::string::npos, r.out);
  BOOST_TEST(t.Summary(r, "replayed")["verified"] == "no");

  r = t.Run({"trim", "100"});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.out);
  BOOST_TEST(t.Summary(r, "trimmed")["head"] == "101");
  r = t.Run({"--json", "replay", "--verify"});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.out);
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  BOOST_TEST_REQUIRE(!j.is_discarded(), r.out);
  BOOST_TEST(j["records"] == 400);
  BOOST_TEST(j["first"] == 101);
  BOOST_TEST(j["last"] == 500);
  BOOST_TEST(j["verified"] == "yes");
  BOOST_TEST(j["mismatches"] == 0);
  BOOST_TEST(j.contains("replay_us"));

  // More than the log holds: --auto-trim keeps going.
  // (--verify would check the earlier records' sizes against --size 100.)
  r = t.Run({"append", "--count", "3000", "--batch", "5", "--size", "100", "--auto-trim"});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.out);
  BOOST_TEST(r.out.find("trimmed ") != std::string::npos);
  BOOST_TEST(t.Summary(r, "appended")["last"] == "3500");
  r = t.Run({"replay", "--verify"});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.out);
  BOOST_TEST(t.Summary(r, "replayed")["last"] == "3500");
  // Without --auto-trim a full log is an error.
  r = t.Run({"append", "--count", "3000", "--size", "100"});
  BOOST_TEST(r.exit_code == 1, r.out);
  BOOST_TEST(r.out.find("error append of record") != std::string::npos, r.out);
  BOOST_TEST(r.out.find("journal full") != std::string::npos, r.out);
}

BOOST_AUTO_TEST_CASE(TheToolRejectsBadArgumentsInOneLine) {
  Host h;
  h.Attach(0, "1M");
  Tool t(h);
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"append", "--count", "5", "--batch", "0"},
           {"append", "--count", "x5"},
           {"append", "--count", "5", "--size", "100", "--max-size", "50"},
           {"--offset", "2G", "replay"},
           {"format", "--uuid", "not-a-uuid"},
           {"--length", "100", "format"},
           {"--length", "100", "replay"},
           {"append", "--count", "1", "--batch", "65536", "--size", "16777216"},
           {"trim", "-1"}}) {
    auto r = t.Run(args, /*range=*/false);
    BOOST_TEST(r.exit_code == 2, args[0] << " " << args[1] << ": " << r.out);
    BOOST_TEST(std::count(r.out.begin(), r.out.end(), '\n') == 1, r.out);
  }
  // Not formatted: a runtime error, not a crash.
  auto r = t.Run({"replay"}, /*range=*/false);
  BOOST_TEST(r.exit_code == 1, r.out);
  BOOST_TEST(r.out.find("error open journal: corruption") != std::string::npos, r.out);
}

// Records that are not the tool's pattern (written through the API) fail
// replay --verify.
BOOST_AUTO_TEST_CASE(TheToolsVerifyCatchesPayloadsThatAreNotThePattern) {
  Host h;
  h.Attach(0, "1M");
  {
    auto d = OpenDev(h);
    BOOST_TEST_REQUIRE(Journal::Format(*d, 8192, 192 << 10, kUuid).ok());
    auto j = OpenJournal(*d, 8192, 192 << 10);
    AppendPattern(*j, 5, 64);
    std::vector<std::byte> wrong = Pattern(6, 64);
    wrong[33] ^= std::byte{1};
    BOOST_TEST_REQUIRE(j->append(wrong).ok());
    AppendPattern(*j, 1, 64);  // commits the wrong one with it
    j.reset();
    BOOST_TEST(d->close().ok());
  }
  Tool t(h);
  auto r = t.Run({"replay", "--verify"});
  BOOST_TEST(r.exit_code == 1, r.out);
  BOOST_TEST(r.out.find("mismatch seq=6: byte 33 differs from the pattern") != std::string::npos,
             r.out);
  auto m = t.Summary(r, "replayed");
  BOOST_TEST(m["records"] == "7");
  BOOST_TEST(m["mismatches"] == "1");
  r = t.Run({"replay"});  // without --verify only counted
  BOOST_TEST(r.exit_code == 0, r.out);
  BOOST_TEST(t.Summary(r, "replayed")["verified"] == "skipped");
}

// Damage inside the committed records (a flipped payload bit, persisted):
// replay stops before it and says so, in C++ and through the tool, which
// exits 1 because commits that had returned were lost.
BOOST_AUTO_TEST_CASE(DamageInsideTheCommittedRecordsIsReportedNotReplayed) {
  Host h;
  h.Attach(0, "1M");
  constexpr uint64_t kOff = 8192, kLen = 192 << 10;
  {
    auto d = OpenDev(h);
    BOOST_TEST_REQUIRE(Journal::Format(*d, kOff, kLen, kUuid).ok());
    auto j = OpenJournal(*d, kOff, kLen);
    AppendPattern(*j, 10, 64);
    const JournalReplayReport clean = j->replay_report();
    BOOST_TEST(!clean.damaged);
    BOOST_TEST(!clean.lost_commits);
    BOOST_TEST(clean.valid_superblocks == 2);
    j.reset();
    // Record 3's payload: the log starts 4096 bytes into the journal, each
    // record is a 40-byte header and 64 bytes of payload.
    const uint64_t at = kOff + 4096 + 2 * (40 + 64) + 40 + 5;
    d->region()[at] ^= std::byte{0x10};
    BOOST_TEST_REQUIRE(d->persist(at, 1).ok());
    BOOST_TEST(d->close().ok());
  }
  {
    auto d = OpenDev(h);
    uint64_t replayed = 0;
    auto j = OpenJournal(*d, kOff, kLen, [&](const JournalRecord& r) {
      ++replayed;
      BOOST_TEST(r.sequence <= 2u);
    });
    const JournalReplayReport rep = j->replay_report();
    BOOST_TEST(replayed == 2u);
    BOOST_TEST(rep.records == 2u);
    BOOST_TEST(rep.damaged);
    BOOST_TEST(rep.lost_commits);
    BOOST_TEST(!rep.detail.empty());
    j.reset();
    BOOST_TEST(d->close().ok());
  }
  Tool t(h);
  auto r = t.Run({"replay", "--verify"});  // the same range: 8 KiB + 192 KiB
  BOOST_TEST(r.exit_code == 1, r.out);
  BOOST_TEST(r.out.find("damage ") != std::string::npos, r.out);
  auto m = t.Summary(r, "replayed");
  BOOST_TEST(m["records"] == "2");
  BOOST_TEST(m["end"] == "damaged");
  BOOST_TEST(m["lost_commits"] == "yes");
}

}  // namespace
}  // namespace vnvram
