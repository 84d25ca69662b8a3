// Journal: crashes during every persist of a workload (format, opens,
// commits that wrap, trims). The journal writes a volatile copy of the
// region; only persisted ranges reach the durable image. Each persist is
// cut after every prefix of its bytes, after 8-byte units in random order,
// and with random subsets of everything not yet persisted; each torn image
// is reopened and must replay exactly a committed prefix holding every
// commit that returned, then take new records over the dropped tail. Also
// persists that fail, or kill the process, at random; a crash in format.
#define BOOST_TEST_MODULE journal_torn
#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "journal/journal.h"

namespace vnvram::journal {
namespace {

using Rec = std::pair<uint64_t, std::string>;  // (sequence, payload)
using Recs = std::vector<Rec>;

std::vector<std::byte> Bytes(const std::string& s) {
  const auto* p = reinterpret_cast<const std::byte*>(s.data());
  return {p, p + s.size()};
}

const std::array<std::byte, 16> kUuid = {std::byte{9}, std::byte{8}, std::byte{7}};

// A persist call of the workload, as it was about to happen: what a crash
// during it may leave, and what replay may then return.
struct Snapshot {
  std::string what;                 // the operation, for messages
  std::vector<std::byte> durable;   // before this persist
  std::vector<std::byte> live;      // the journal's copy at that moment
  uint64_t offset = 0, length = 0;  // the range being persisted
  std::vector<Recs> outcomes;       // what replay may return after the crash
  std::vector<size_t> batch_sizes;  // payload sizes of the batch in flight
  bool may_be_unformatted = false;  // a crash during Format
};

// The workload's device: records a snapshot at every persist, then makes
// the range durable.
struct Recorder {
  explicit Recorder(size_t size) : live(size, std::byte{0xEE}), durable(size, std::byte{0xEE}) {}
  PersistFn Persist() {
    return [this](uint64_t off, uint64_t len) {
      BOOST_TEST_REQUIRE(off + len <= live.size());
      Snap(off, len);
      std::memcpy(durable.data() + off, live.data() + off, len);
      return Status::Ok();
    };
  }
  // A crash point: the range [off, off + len) is about to be persisted
  // (empty: a crash between persists, with stores possibly durable early).
  void Snap(uint64_t off, uint64_t len) {
    Snapshot s{what, durable, live, off, len, outcomes, batch_sizes, formatting};
    snaps.push_back(std::move(s));
  }
  std::vector<std::byte> live, durable;
  std::string what;
  std::vector<Recs> outcomes;
  std::vector<size_t> batch_sizes;
  bool formatting = false;
  std::vector<Snapshot> snaps;
};

struct Replayed {
  Status status;
  Recs records;
  ReplayStats stats;
  std::unique_ptr<Journal> journal;
};

Replayed OpenRegion(std::span<std::byte> region, PersistFn persist) {
  Replayed r;
  auto j = Journal::Open(region, std::move(persist), [&](const Record& rec) {
    r.records.emplace_back(
        rec.sequence,
        std::string(reinterpret_cast<const char*>(rec.payload.data()), rec.payload.size()));
  });
  r.status = j.status();
  if (j.ok()) {
    r.journal = std::move(j).value();
    r.stats = r.journal->replay_stats();
  }
  return r;
}

std::string Describe(const Recs& recs) {
  std::string s = "[";
  for (const auto& [seq, payload] : recs) {
    s.append(" ").append(std::to_string(seq)).append(":").append(std::to_string(payload.size()));
  }
  return s.append(" ]");
}

// Runs a fixed workload on `size` bytes and returns its snapshots: format,
// open, then seeded appends (batches of 1-3 records, sizes that leave
// under-header gaps and pads at the end of the log), commits, trims and
// reopens, both as a process restart (stores kept) and as a power cut at a
// clean point (only persisted bytes kept).
std::vector<Snapshot> RecordWorkload(size_t size, uint64_t seed, int steps) {
  Recorder d(size);
  std::mt19937_64 rng(seed);
  d.what = "format";
  d.formatting = true;
  d.outcomes = {Recs{}};
  BOOST_TEST_REQUIRE(Journal::Format(d.live, d.Persist(), kUuid).ok());
  d.formatting = false;
  Recs committed, pending;
  d.what = "open";
  d.outcomes = {committed};
  Replayed o = OpenRegion(d.live, d.Persist());
  BOOST_TEST_REQUIRE(o.status.ok());
  int wraps = 0, trims = 0, reopens = 0;
  static constexpr size_t kSizes[] = {0, 1, 7, 8, 24, 33, 100, 250, 333, 512, 700, 1000, 1500};
  for (int step = 0; step < steps; ++step) {
    const int op = static_cast<int>(rng() % 100);
    if (op < 50) {
      const size_t n = kSizes[rng() % std::size(kSizes)];
      std::string payload(n, static_cast<char>('a' + step % 26));
      for (size_t i = 0; i < n; i += 7) payload[i] = static_cast<char>(rng());
      const uint64_t free_before = o.journal->free_bytes();
      auto seq = o.journal->Append(Bytes(payload), step);
      if (!seq.ok()) {
        BOOST_TEST_REQUIRE((seq.status().code() == Code::kResourceExhausted));
        if (committed.size() < 2) continue;
        // Full: trim half of the committed records to make room.
        const size_t k = committed.size() / 2 - 1;
        Recs after(committed.begin() + static_cast<ptrdiff_t>(k) + 1, committed.end());
        d.what = "trim to " + std::to_string(committed[k].first) + " (full)";
        d.outcomes = {committed, after};
        BOOST_TEST_REQUIRE(o.journal->Trim(committed[k].first).ok());
        committed = after;
        ++trims;
        continue;
      }
      // More space taken than the record's: it wrapped (a pad or a gap).
      wraps += free_before - o.journal->free_bytes() > ((kHeaderSize + n + 7) & ~uint64_t{7});
      pending.emplace_back(*seq, payload);
      d.batch_sizes.push_back(n);
      d.what = "after append " + std::to_string(*seq);
      d.outcomes = {committed};
      d.Snap(0, 0);
    } else if (op < 78) {
      if (pending.empty()) continue;
      Recs all = committed;
      all.insert(all.end(), pending.begin(), pending.end());
      d.what = "commit to " + std::to_string(pending.back().first);
      d.outcomes = {committed, all};
      BOOST_TEST_REQUIRE(o.journal->Commit().ok());
      committed = all;
      pending.clear();
      d.batch_sizes.clear();
    } else if (op < 90) {
      if (committed.empty()) continue;
      const size_t k = rng() % committed.size();
      Recs after(committed.begin() + static_cast<ptrdiff_t>(k) + 1, committed.end());
      d.what = "trim to " + std::to_string(committed[k].first);
      d.outcomes = {committed, after};
      BOOST_TEST_REQUIRE(o.journal->Trim(committed[k].first).ok());
      committed = after;
      ++trims;
    } else {
      o.journal.reset();
      if (op < 95) {
        d.live = d.durable;  // a power cut at a clean point
      }
      pending.clear();
      d.batch_sizes.clear();
      d.what = "reopen";
      d.outcomes = {committed};
      o = OpenRegion(d.live, d.Persist());
      BOOST_TEST_REQUIRE(o.status.ok());
      BOOST_TEST_REQUIRE((o.records == committed), "reopen at step " << step);
      ++reopens;
    }
  }
  BOOST_TEST_MESSAGE("workload " << seed << ": " << d.snaps.size() << " crash points, " << wraps
                                 << " wraps, " << trims << " trims, " << reopens << " reopens");
  BOOST_TEST_REQUIRE((wraps > 0 && trims > 0 && reopens > 0));
  return std::move(d.snaps);
}

struct Totals {
  uint64_t images = 0;         // torn images reopened
  uint64_t with_batch = 0;     // ... that replayed the batch in flight
  uint64_t continuations = 0;  // new lives written over a torn image
};

// A plain device for the life after a crash: persist copies to durable;
// `cut` (when set) makes the next persist stop after that many bytes, and
// every later one do nothing (the machine is dead).
struct Device {
  explicit Device(std::vector<std::byte> image) : live(image), durable(std::move(image)) {}
  PersistFn Persist() {
    return [this](uint64_t off, uint64_t len) {
      if (dead) return Status::IoError("dead");
      uint64_t n = len;
      if (cut >= 0) {
        n = std::min<uint64_t>(len, static_cast<uint64_t>(cut));
        dead = true;
      }
      std::memcpy(durable.data() + off, live.data() + off, n);
      return dead ? Status::IoError("crashed") : Status::Ok();
    };
  }
  std::vector<std::byte> live, durable;
  int64_t cut = -1;
  bool dead = false;
};

// After a crash left `image` (which replayed `before`), a new life appends
// a batch of the in-flight batch's sizes (so stale records of the dropped
// tail sit exactly where the new ones end) and commits it; then either the
// commit completes or it is cut at `cut` bytes. Replay must return `before`
// plus the new batch, or (cut) `before` alone.
void Continue(const std::vector<std::byte>& image, const Recs& before,
              const std::vector<size_t>& sizes, int64_t cut, const std::string& context) {
  Device d(image);
  d.cut = -1;
  Replayed o = OpenRegion(d.live, d.Persist());
  BOOST_TEST_REQUIRE(o.status.ok(), context);
  BOOST_TEST_REQUIRE((o.records == before), context);
  d.cut = cut;
  Recs after = before;
  for (size_t i = 0; i < sizes.size(); ++i) {
    const std::string payload(sizes[i], static_cast<char>('Z' - i));
    auto seq = o.journal->Append(Bytes(payload), 1);
    if (!seq.ok()) break;  // the log is full: the batch stays shorter
    after.emplace_back(*seq, payload);
  }
  const Status committed = o.journal->Commit();
  o.journal.reset();
  Replayed r = OpenRegion(d.durable, [](uint64_t, uint64_t) { return Status::Ok(); });
  BOOST_TEST_REQUIRE(r.status.ok(), context);
  if (cut < 0) {
    BOOST_TEST_REQUIRE(committed.ok(), context);
    BOOST_TEST_REQUIRE((r.records == after), context << " got " << Describe(r.records));
    // Everything trimmed: the head is where the new batch ends, maybe on a
    // stale record of the dropped tail with the head's sequence.
    if (r.journal->committed_sequence() >= r.journal->head_sequence()) {
      BOOST_TEST_REQUIRE(r.journal->Trim(r.journal->committed_sequence()).ok());
    }
    r.journal.reset();
    Replayed empty = OpenRegion(d.durable, [](uint64_t, uint64_t) { return Status::Ok(); });
    BOOST_TEST_REQUIRE(empty.records.empty(),
                       context << " after trim got " << Describe(empty.records));
  } else {
    BOOST_TEST_REQUIRE((r.records == before || r.records == after),
                       context << " torn new batch at " << cut << ": got " << Describe(r.records));
  }
  BOOST_TEST_REQUIRE(!r.stats.lost_commits(), context << ": " << r.stats.end_detail);
}

// Reopens a torn image and checks what replay returned against the
// snapshot's possible outcomes.
Recs CheckImage(const std::vector<std::byte>& image, const Snapshot& s, Totals& totals,
                const std::string& context) {
  std::vector<std::byte> copy = image;
  Replayed r = OpenRegion(copy, [](uint64_t, uint64_t) { return Status::Ok(); });
  ++totals.images;
  if (!r.status.ok()) {
    BOOST_TEST_REQUIRE(s.may_be_unformatted, context << ": " << r.status.ToString());
    BOOST_TEST_REQUIRE((r.status.code() == Code::kCorruption), context);
    return {};
  }
  bool matched = false;
  for (const Recs& outcome : s.outcomes) matched = matched || r.records == outcome;
  BOOST_TEST_REQUIRE(matched, context << ": replay returned " << Describe(r.records)
                                      << ", committed " << Describe(s.outcomes.front()));
  if (s.outcomes.size() > 1 && r.records == s.outcomes.back() &&
      s.outcomes.back() != s.outcomes.front()) {
    ++totals.with_batch;
  }
  BOOST_TEST_REQUIRE(!r.stats.lost_commits(), context << ": " << r.stats.end_detail);
  return r.records;
}

// Reopens a torn image, then writes two new lives over it: the new batch
// is a prefix of the in-flight batch's sizes, so that stale records of the
// dropped tail (the next sequence, maybe a commit flag) sit exactly where
// it ends; it commits completely, or is cut at a random byte.
void CheckAndContinue(const std::vector<std::byte>& image, const Snapshot& s, Totals& totals,
                      const std::string& context, std::mt19937_64& rng) {
  const Recs got = CheckImage(image, s, totals, context);
  if (s.may_be_unformatted) return;
  std::vector<size_t> sizes = s.batch_sizes;
  if (sizes.empty()) sizes = {24};
  sizes.resize(1 + rng() % sizes.size());
  Continue(image, got, sizes, -1, context);
  Continue(image, got, sizes, static_cast<int64_t>(rng() % 1200), context);
  totals.continuations += 2;
}

// Every prefix of every persist: each distinct torn image.
void CrashAtEveryPrefix(const std::vector<Snapshot>& snaps, Totals& totals, uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (size_t k = 0; k < snaps.size(); ++k) {
    const Snapshot& s = snaps[k];
    std::vector<std::byte> image = s.durable;
    for (uint64_t c = 0; c <= s.length; ++c) {
      if (c > 0) {
        const uint64_t at = s.offset + c - 1;
        if (image[at] == s.live[at]) continue;  // the same image as one byte less
        image[at] = s.live[at];
      }
      CheckAndContinue(image, s, totals,
                       "persist " + std::to_string(k) + " (" + s.what + ") cut at " +
                           std::to_string(c) + "/" + std::to_string(s.length),
                       rng);
    }
  }
}

// The persist's 8-byte units reach the media in a random order: every
// count of them, for a few orders.
void CrashInUnitOrder(const std::vector<Snapshot>& snaps, Totals& totals, uint64_t seed,
                      int orders) {
  std::mt19937_64 rng(seed);
  for (size_t k = 0; k < snaps.size(); ++k) {
    const Snapshot& s = snaps[k];
    const uint64_t units = (s.length + 7) / 8;
    std::vector<uint64_t> order(units);
    for (uint64_t u = 0; u < units; ++u) order[u] = u;
    for (int o = 0; o < orders; ++o) {
      std::shuffle(order.begin(), order.end(), rng);
      std::vector<std::byte> image = s.durable;
      for (uint64_t n = 1; n < units; ++n) {
        const uint64_t from = s.offset + 8 * order[n - 1];
        const uint64_t len = std::min<uint64_t>(8, s.offset + s.length - from);
        if (std::memcmp(image.data() + from, s.live.data() + from, len) == 0) continue;
        std::memcpy(image.data() + from, s.live.data() + from, len);
        CheckAndContinue(image, s, totals,
                         "persist " + std::to_string(k) + " (" + s.what + ") " + std::to_string(n) +
                             " of " + std::to_string(units) + " units, order " + std::to_string(o),
                         rng);
      }
    }
  }
}

// Stores reach the media before any persist (cache evictions): any subset
// of the 8-byte units that differ from the durable image, at every crash
// point, persist or not.
void CrashWithEarlyStores(const std::vector<Snapshot>& snaps, Totals& totals, uint64_t seed,
                          int subsets) {
  std::mt19937_64 rng(seed);
  for (size_t k = 0; k < snaps.size(); ++k) {
    const Snapshot& s = snaps[k];
    std::vector<uint64_t> dirty;
    for (uint64_t u = 0; u < s.live.size() / 8; ++u) {
      if (std::memcmp(s.live.data() + 8 * u, s.durable.data() + 8 * u, 8) != 0) dirty.push_back(u);
    }
    if (dirty.empty()) continue;
    for (int t = 0; t < subsets; ++t) {
      std::vector<std::byte> image = s.durable;
      const uint64_t keep = rng() % 4;  // sparse to dense
      for (uint64_t u : dirty) {
        if (rng() % 4 <= keep) std::memcpy(image.data() + 8 * u, s.live.data() + 8 * u, 8);
      }
      CheckAndContinue(image, s, totals,
                       "crash point " + std::to_string(k) + " (" + s.what +
                           ") early stores, subset " + std::to_string(t),
                       rng);
    }
  }
}

BOOST_AUTO_TEST_CASE(EveryPrefixOfEveryPersistReplaysACommittedPrefix) {
  Totals totals;
  for (uint64_t seed : {1u, 2u, 3u}) {
    const std::vector<Snapshot> snaps = RecordWorkload(seed == 3 ? 12288 : 8192, seed, 400);
    CrashAtEveryPrefix(snaps, totals, seed);
  }
  BOOST_TEST_MESSAGE(totals.images << " torn images, " << totals.with_batch
                                   << " with the batch in flight, " << totals.continuations
                                   << " new lives over them");
  BOOST_TEST(totals.with_batch > 0u);
}

BOOST_AUTO_TEST_CASE(PersistedUnitsInAnyOrderReplayACommittedPrefix) {
  Totals totals;
  for (uint64_t seed : {4u, 5u}) {
    CrashInUnitOrder(RecordWorkload(8192, seed, 400), totals, seed, 5);
  }
  BOOST_TEST_MESSAGE(totals.images << " torn images, " << totals.with_batch
                                   << " with the batch in flight, " << totals.continuations
                                   << " new lives over them");
  BOOST_TEST(totals.with_batch > 0u);
}

BOOST_AUTO_TEST_CASE(StoresDurableBeforeTheirPersistReplayACommittedPrefix) {
  Totals totals;
  for (uint64_t seed : {6u, 7u}) {
    CrashWithEarlyStores(RecordWorkload(12288, seed, 400), totals, seed, 24);
  }
  BOOST_TEST_MESSAGE(totals.images << " torn images, " << totals.with_batch
                                   << " with the batch in flight, " << totals.continuations
                                   << " new lives over them");
  BOOST_TEST(totals.with_batch > 0u);
}

// A device whose persists fail at random after making a random prefix of
// their range durable: the caller sees an error and may go on, or (a
// kill) the process dies there, its memory as it was during the persist.
struct FlakyDevice {
  explicit FlakyDevice(size_t size, uint64_t seed)
      : live(size, std::byte{0xEE}), durable(size, std::byte{0xEE}), rng(seed) {}
  PersistFn Persist() {
    return [this](uint64_t off, uint64_t len) {
      if (killed) return Status::IoError("killed");
      uint64_t n = len;
      const bool fail = rng() % 100 < fail_percent;
      if (fail) n = rng() % (len + 1);
      std::memcpy(durable.data() + off, live.data() + off, n);
      if (fail && rng() % 2 == 0) {
        killed = true;
        memory_at_kill = live;
      }
      return fail ? Status::IoError("persist failed") : Status::Ok();
    };
  }
  std::vector<std::byte> live, durable, memory_at_kill;
  std::mt19937_64 rng;
  uint64_t fail_percent = 0;
  bool killed = false;
};

// Commits and trims whose persist failed, the journal used on after them,
// and crashes: replay returns consecutive records of what was appended,
// every record whose commit returned OK and that no trim may have dropped,
// and nothing a trim that returned OK dropped.
BOOST_AUTO_TEST_CASE(FailedPersistsNeverLoseCommittedRecords) {
  FlakyDevice d(8192, 11);
  BOOST_TEST_REQUIRE(Journal::Format(d.live, d.Persist(), kUuid).ok());
  d.fail_percent = 15;
  std::mt19937_64 rng(12);
  std::unique_ptr<Journal> j;
  Recs known;             // every record that may be in the log, by sequence
  uint64_t min_head = 1;  // above every trim that returned OK
  uint64_t max_head = 1;  // above every trim attempted
  uint64_t certain = 0;   // the last sequence a returned commit made durable
  uint64_t possible = 0;  // the last sequence any commit attempt may have made durable
  int failures = 0, reopens = 0, kills = 0;
  auto reopen = [&](bool power_cut) {
    j.reset();
    Replayed r;
    do {
      if (d.killed) d.live = d.memory_at_kill;  // a new process maps the same memory
      d.killed = false;
      if (power_cut) d.live = d.durable;
      r = OpenRegion(d.live, d.Persist());  // its persists may fail too
    } while (!r.status.ok() && r.status.code() == Code::kIoError);
    BOOST_TEST_REQUIRE(r.status.ok(), r.status.ToString());
    for (size_t i = 0; i < r.records.size(); ++i) {
      const Rec& got = r.records[i];
      BOOST_TEST_REQUIRE((got.first >= min_head && got.first <= possible), got.first);
      BOOST_TEST_REQUIRE((got.first - known.front().first < known.size()));
      BOOST_TEST_REQUIRE((known[got.first - known.front().first] == got), got.first);
      if (i > 0) BOOST_TEST_REQUIRE(got.first == r.records[i - 1].first + 1);
    }
    for (uint64_t seq = max_head; seq <= certain; ++seq) {
      BOOST_TEST_REQUIRE(
          (!r.records.empty() && r.records.front().first <= seq && r.records.back().first >= seq),
          "committed record " << seq << " lost; replayed " << Describe(r.records) << " heads "
                              << min_head << ".." << max_head << " certain " << certain
                              << " possible " << possible << " power cut " << power_cut << ": "
                              << r.stats.end_detail);
    }
    BOOST_TEST_REQUIRE(!r.stats.lost_commits(), r.stats.end_detail);
    j = std::move(r.journal);
    known = r.records;
    min_head = max_head = j->head_sequence();
    certain = possible = j->committed_sequence();
    ++reopens;
  };
  known.emplace_back(1, "");  // anchors sequence numbers before the first append
  known.clear();
  reopen(false);
  for (int step = 0; step < 30000; ++step) {
    if (d.killed) {
      ++kills;
      reopen(rng() % 2 == 0);
    }
    const int op = static_cast<int>(rng() % 100);
    if (op < 50) {
      const std::string payload(rng() % 600, static_cast<char>('a' + step % 26));
      auto seq = j->Append(Bytes(payload), step);
      if (seq.ok()) {
        if (known.empty())
          known.emplace_back(*seq, payload);
        else {
          BOOST_TEST_REQUIRE(*seq == known.back().first + 1);
          known.emplace_back(*seq, payload);
        }
      } else {
        BOOST_TEST_REQUIRE((seq.status().code() == Code::kResourceExhausted));
      }
    } else if (op < 75) {
      const uint64_t last = j->next_sequence() - 1;
      const Status st = j->Commit();
      if (last > possible) possible = last;
      if (st.ok()) {
        certain = last;
      } else {
        BOOST_TEST_REQUIRE((st.code() == Code::kIoError));
        ++failures;
      }
    } else if (op < 92) {
      if (j->committed_sequence() < j->head_sequence()) continue;
      const uint64_t to =
          j->head_sequence() + rng() % (j->committed_sequence() - j->head_sequence() + 1);
      const Status st = j->Trim(to);
      max_head = std::max(max_head, to + 1);
      if (st.ok()) {
        min_head = std::max(min_head, to + 1);
        BOOST_TEST_REQUIRE(j->head_sequence() == to + 1);
      } else {
        BOOST_TEST_REQUIRE((st.code() == Code::kIoError));
        ++failures;
      }
    } else {
      reopen(op < 97);
    }
  }
  BOOST_TEST_MESSAGE(failures << " failed persists, " << kills << " processes killed during one, "
                              << reopens << " reopens");
  BOOST_TEST((failures > 100 && kills > 100));
}

// A trim whose superblock persist fails frees nothing, and the next
// superblock write goes to the same slot: two failed (torn) writes in a
// row and a power cut still leave the durable newest slot.
BOOST_AUTO_TEST_CASE(AFailedTrimFreesNothingAndSparesTheDurableSuperblock) {
  Device d(std::vector<std::byte>(8192, std::byte{0xEE}));
  int64_t fail_after = -1;  // >= 0: persists copy that many bytes and fail
  PersistFn persist = [&](uint64_t off, uint64_t len) {
    if (fail_after < 0) return d.Persist()(off, len);
    const uint64_t n = std::min<uint64_t>(len, static_cast<uint64_t>(fail_after));
    std::memcpy(d.durable.data() + off, d.live.data() + off, n);
    return Status::IoError("persist failed");
  };
  BOOST_TEST_REQUIRE(Journal::Format(d.live, persist, kUuid).ok());
  Replayed o = OpenRegion(d.live, persist);
  BOOST_TEST_REQUIRE(o.status.ok());
  Recs all;
  for (int i = 0; i < 3; ++i) {
    const std::string p(1000, static_cast<char>('k' + i));
    all.emplace_back(*o.journal->Append(Bytes(p), 0), p);
    BOOST_TEST_REQUIRE(o.journal->Commit().ok());
  }
  const uint64_t free_before = o.journal->free_bytes();
  for (int64_t torn : {60, 60}) {  // a torn slot (its generation half written), twice
    fail_after = torn;
    BOOST_TEST((o.journal->Trim(2).code() == Code::kIoError));
    fail_after = -1;
    BOOST_TEST(o.journal->head_sequence() == 1u);
    BOOST_TEST(o.journal->free_bytes() == free_before);
    BOOST_TEST((o.journal->Append(std::vector<std::byte>(1000), 0).status().code() ==
                Code::kResourceExhausted));
  }
  o.journal.reset();
  Replayed r = OpenRegion(d.durable, [](uint64_t, uint64_t) { return Status::Ok(); });
  BOOST_TEST_REQUIRE(r.status.ok(), r.status.ToString());
  BOOST_TEST((r.records == all), Describe(r.records));
}

// Format over a journal with records: a crash leaves no superblock, the
// new empty journal, or (its first persist torn) the old journal partly
// wiped, never a record that is not the old journal's.
BOOST_AUTO_TEST_CASE(ACrashDuringFormatLeavesNoForeignRecord) {
  Recorder d(8192);
  BOOST_TEST_REQUIRE(Journal::Format(d.live, d.Persist(), kUuid).ok());
  Recs old;
  {
    Replayed o = OpenRegion(d.live, d.Persist());
    for (int i = 0; i < 12; ++i) {
      const std::string p(100 + 10 * i, static_cast<char>('A' + i));
      old.emplace_back(*o.journal->Append(Bytes(p), 0), p);
      BOOST_TEST_REQUIRE(o.journal->Commit().ok());
    }
  }
  d.snaps.clear();
  BOOST_TEST_REQUIRE(Journal::Format(d.live, d.Persist(), kUuid).ok());
  BOOST_TEST_REQUIRE(d.snaps.size() == 2u);
  uint64_t images = 0, old_seen = 0;
  for (const Snapshot& s : d.snaps) {
    std::vector<std::byte> image = s.durable;
    for (uint64_t c = 0; c <= s.length; ++c) {
      if (c > 0) {
        if (image[s.offset + c - 1] == s.live[s.offset + c - 1]) continue;
        image[s.offset + c - 1] = s.live[s.offset + c - 1];
      }
      std::vector<std::byte> copy = image;
      Replayed r = OpenRegion(copy, [](uint64_t, uint64_t) { return Status::Ok(); });
      ++images;
      if (!r.status.ok()) {
        BOOST_TEST_REQUIRE((r.status.code() == Code::kCorruption));
        continue;
      }
      // A prefix of the old journal's records (the wipe stops the chain).
      BOOST_TEST_REQUIRE(r.records.size() <= old.size());
      for (size_t i = 0; i < r.records.size(); ++i) {
        BOOST_TEST_REQUIRE((r.records[i] == old[i]), "cut " << c);
      }
      old_seen += r.records.empty() ? 0 : 1;
    }
  }
  BOOST_TEST_MESSAGE(images << " images, " << old_seen << " with old records");
  BOOST_TEST(images > 100u);
}

}  // namespace
}  // namespace vnvram::journal
