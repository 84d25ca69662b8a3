// Journal: the format of docs/journal-format.md on a region in memory, with
// a persist call that records what was made durable; crashes are modelled
// by reopening either the region as it is or only its persisted bytes.
#define BOOST_TEST_MODULE journal
#include "journal/journal.h"

#include <boost/test/unit_test.hpp>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace vnvram::journal {
namespace {

// A region and the copy of it that persist() made durable.
struct Device {
  explicit Device(size_t size) : live(size, std::byte{0xEE}), durable(size, std::byte{0xEE}) {}
  PersistFn Persist() {
    return [this](uint64_t off, uint64_t len) {
      BOOST_TEST_REQUIRE(off + len <= live.size());
      std::memcpy(durable.data() + off, live.data() + off, len);
      ++persists;
      return Status::Ok();
    };
  }
  // A crash that loses every store not persisted.
  void LoseUnpersisted() { live = durable; }
  std::vector<std::byte> live, durable;
  int persists = 0;
};

std::vector<std::byte> Bytes(const std::string& s) {
  std::vector<std::byte> b(s.size());
  std::memcpy(b.data(), s.data(), s.size());
  return b;
}

struct Opened {
  std::unique_ptr<Journal> j;
  std::vector<std::pair<uint64_t, std::string>> records;
};

Opened Open(Device& d) {
  Opened o;
  auto j = Journal::Open(d.live, d.Persist(), [&](const Record& r) {
    o.records.emplace_back(
        r.sequence, std::string(reinterpret_cast<const char*>(r.payload.data()), r.payload.size()));
  });
  BOOST_TEST_REQUIRE(j.ok(), j.status().ToString());
  o.j = std::move(j).value();
  return o;
}

const std::array<std::byte, 16> kUuid = {std::byte{1}, std::byte{2}, std::byte{3}};

BOOST_AUTO_TEST_CASE(CommittedRecordsComeBackUncommittedOnesDoNot) {
  Device d(64 << 10);
  BOOST_TEST_REQUIRE(Journal::Format(d.live, d.Persist(), kUuid).ok());
  {
    Opened o = Open(d);
    BOOST_TEST(o.records.empty());
    for (const char* s : {"alpha", "beta", "gamma"}) {
      BOOST_TEST_REQUIRE(o.j->Append(Bytes(s), 7).ok());
    }
    BOOST_TEST_REQUIRE(o.j->Commit().ok());
    BOOST_TEST(o.j->committed_sequence() == 3u);
    BOOST_TEST_REQUIRE(o.j->Append(Bytes("delta"), 8).ok());
    BOOST_TEST_REQUIRE(o.j->Append(Bytes("epsilon"), 9).ok());  // never committed
  }
  for (bool lose : {false, true}) {  // stores visible, or only persisted bytes
    Device c = d;
    if (lose) c.LoseUnpersisted();
    Opened o = Open(c);
    BOOST_TEST_REQUIRE(o.records.size() == 3u);
    BOOST_TEST(o.records[0].second == "alpha");
    BOOST_TEST(o.records[2].first == 3u);
    BOOST_TEST(o.records[2].second == "gamma");
    BOOST_TEST(o.j->next_sequence() == 4u);
  }
}

BOOST_AUTO_TEST_CASE(ACorruptRecordEndsTheReplayAndNothingAfterItComesBack) {
  Device d(64 << 10);
  BOOST_TEST_REQUIRE(Journal::Format(d.live, d.Persist(), kUuid).ok());
  {
    Opened o = Open(d);
    for (int i = 0; i < 4; ++i) {
      BOOST_TEST_REQUIRE(o.j->Append(Bytes("record " + std::to_string(i)), i).ok());
      BOOST_TEST_REQUIRE(o.j->Commit().ok());
    }
  }
  // Flip one payload bit of the third record (two records of 40 + 8 bytes
  // before it from the log's start).
  d.live[kLogOffset + 2 * 48 + kHeaderSize + 1] ^= std::byte{0x10};
  Opened o = Open(d);
  BOOST_TEST_REQUIRE(o.records.size() == 2u);
  BOOST_TEST(o.records[1].second == "record 1");
  // Appends go on after the valid prefix, with the next sequence.
  BOOST_TEST(*o.j->Append(Bytes("new"), 1) == 3u);
}

BOOST_AUTO_TEST_CASE(AStaleRecordOfAnEarlierLifeNeverContinuesTheLog) {
  Device d(64 << 10);
  BOOST_TEST_REQUIRE(Journal::Format(d.live, d.Persist(), kUuid).ok());
  {
    Opened o = Open(d);
    BOOST_TEST_REQUIRE(o.j->Append(Bytes("AAAA"), 1).ok());
    BOOST_TEST_REQUIRE(o.j->Append(Bytes("BBBB"), 2).ok());
    BOOST_TEST_REQUIRE(o.j->Commit().ok());
  }
  d.live[kLogOffset + kHeaderSize] ^= std::byte{1};  // the batch's first record is torn
  {
    Opened o = Open(d);
    BOOST_TEST(o.records.empty());
    // Same size as A: B (sequence 2, commit flag) now follows it on the media.
    BOOST_TEST_REQUIRE(o.j->Append(Bytes("CCCC"), 3).ok());
  }
  Opened o = Open(d);  // C was never committed, and B is of an earlier life
  BOOST_TEST(o.records.empty());
}

BOOST_AUTO_TEST_CASE(TheSuperblockSurvivesATornSlotAndRefusesWhenBothAreBad) {
  Device d(64 << 10);
  BOOST_TEST_REQUIRE(Journal::Format(d.live, d.Persist(), kUuid).ok());
  {
    Opened o = Open(d);
    for (int i = 0; i < 5; ++i) BOOST_TEST_REQUIRE(o.j->Append(Bytes("r"), i).ok());
    BOOST_TEST_REQUIRE(o.j->Commit().ok());
    BOOST_TEST_REQUIRE(o.j->Trim(2).ok());
  }
  {
    Opened o = Open(d);
    BOOST_TEST_REQUIRE(o.records.size() == 3u);
    BOOST_TEST(o.records.front().first == 3u);
  }
  // Tear the newest slot: the older one (the head before the trim, or an
  // earlier open's) still opens the journal.
  Device torn = d;
  const uint64_t gen0 = 0, gen1 = 2048;
  torn.live[gen0 + 60] ^= std::byte{1};
  auto j0 = Journal::Open(torn.live, torn.Persist(), nullptr);
  Device torn1 = d;
  torn1.live[gen1 + 60] ^= std::byte{1};
  auto j1 = Journal::Open(torn1.live, torn1.Persist(), nullptr);
  BOOST_TEST((j0.ok() && j1.ok()));
  Device both = d;  // (an Open rewrites a slot: a fresh copy)
  both.live[gen0 + 60] ^= std::byte{1};
  both.live[gen1 + 60] ^= std::byte{1};
  auto bad = Journal::Open(both.live, both.Persist(), nullptr);
  BOOST_TEST((bad.status().code() == Code::kCorruption));
  std::vector<std::byte> other(128 << 10);
  std::memcpy(other.data(), d.live.data(), 4096);
  auto wrong = Journal::Open(other, d.Persist(), nullptr);
  BOOST_TEST((wrong.status().code() == Code::kCorruption));
  std::vector<std::byte> small(4096);
  BOOST_TEST((Journal::Format(small, d.Persist(), kUuid).code() == Code::kInvalidArgument));
}

BOOST_AUTO_TEST_CASE(AFullLogRefusesUntilTrimmedAndWrapsAround) {
  Device d(8192);  // a 4096-byte log
  BOOST_TEST_REQUIRE(Journal::Format(d.live, d.Persist(), kUuid).ok());
  Opened o = Open(d);
  const std::vector<std::byte> rec(1000, std::byte{7});
  int appended = 0;
  while (o.j->Append(rec, 0).ok()) ++appended;
  BOOST_TEST(appended == 3);  // 4 x 1040 > 4096
  BOOST_TEST((o.j->Append(rec, 0).status().code() == Code::kResourceExhausted));
  BOOST_TEST_REQUIRE(o.j->Commit().ok());
  BOOST_TEST((o.j->Trim(9).code() == Code::kOutOfRange));
  BOOST_TEST_REQUIRE(o.j->Trim(2).ok());
  BOOST_TEST_REQUIRE(o.j->Append(rec, 0).ok());  // wraps: a pad, then the record
  BOOST_TEST_REQUIRE(o.j->Commit().ok());
  Opened r = Open(d);
  BOOST_TEST_REQUIRE(r.records.size() == 2u);
  BOOST_TEST(r.records[0].first == 3u);
  BOOST_TEST(r.records[1].first == 4u);
  BOOST_TEST(
      (o.j->Append(std::vector<std::byte>(5000), 0).status().code() == Code::kInvalidArgument));
}

// Random appends, commits, trims and crashes (either kind) against a model:
// every replay returns exactly the committed records not trimmed.
BOOST_AUTO_TEST_CASE(RandomOperationsAndCrashesMatchTheModel) {
  std::mt19937_64 rng(20261207);
  Device d(16 << 10);
  BOOST_TEST_REQUIRE(Journal::Format(d.live, d.Persist(), kUuid).ok());
  std::vector<std::pair<uint64_t, std::string>> committed, pending;
  Opened o = Open(d);
  for (int step = 0; step < 20000; ++step) {
    const int op = static_cast<int>(rng() % 100);
    if (op < 55) {
      std::string payload(rng() % 700, static_cast<char>('a' + rng() % 26));
      payload += std::to_string(step);
      auto seq = o.j->Append(Bytes(payload), step);
      if (seq.ok()) {
        pending.emplace_back(*seq, payload);
      } else {
        BOOST_TEST_REQUIRE((seq.status().code() == Code::kResourceExhausted));
      }
    } else if (op < 80) {
      BOOST_TEST_REQUIRE(o.j->Commit().ok());
      committed.insert(committed.end(), pending.begin(), pending.end());
      pending.clear();
    } else if (op < 92) {
      if (!committed.empty()) {
        const size_t k = rng() % committed.size();
        BOOST_TEST_REQUIRE(o.j->Trim(committed[k].first).ok());
        committed.erase(committed.begin(), committed.begin() + static_cast<ptrdiff_t>(k) + 1);
      }
    } else {
      if (rng() % 2) d.LoseUnpersisted();
      o = Open(d);
      pending.clear();
      BOOST_TEST_REQUIRE(o.records == committed, "step " << step);
    }
  }
}

// For libvnvram's Device, whose mapping moves (journal.hpp): after Rebind()
// the journal reads and stores only the new span.
BOOST_AUTO_TEST_CASE(RebindMovesEveryLaterStoreToTheNewSpan) {
  Device d(16 << 10);
  BOOST_TEST_REQUIRE(Journal::Format(d.live, d.Persist(), kUuid).ok());
  Opened o = Open(d);
  BOOST_TEST_REQUIRE(o.j->Append(Bytes("before"), 1).ok());
  // The new mapping holds the same bytes (what libvnvram copies over).
  Device moved = d;
  BOOST_TEST((o.j->Rebind(std::span(moved.live).first(8192)).code() == Code::kInvalidArgument));
  BOOST_TEST_REQUIRE(o.j->Rebind(moved.live).ok());
  const std::vector<std::byte> old_live = d.live;
  BOOST_TEST_REQUIRE(o.j->Commit().ok());  // the flag goes to the new span
  BOOST_TEST_REQUIRE(o.j->Append(Bytes("after"), 2).ok());
  BOOST_TEST_REQUIRE(o.j->Commit().ok());
  BOOST_TEST_REQUIRE(o.j->Trim(1).ok());  // the superblock too
  BOOST_TEST(d.live == old_live, "a store reached the old span");
  // (The persist calls still go to `d`'s function: offsets only.)
  Opened again = Open(moved);
  BOOST_TEST_REQUIRE(again.records.size() == 1u);
  BOOST_TEST(again.records[0].first == 2u);
  BOOST_TEST(again.records[0].second == "after");
}

// Fits() predicts Append() exactly, across pads, wraps and trims.
BOOST_AUTO_TEST_CASE(FitsPredictsWhetherAppendsSucceed) {
  Device d(12 << 10);
  BOOST_TEST_REQUIRE(Journal::Format(d.live, d.Persist(), kUuid).ok());
  Opened o = Open(d);
  std::mt19937 rng(7);
  int refused = 0, partly_appended = 0;
  for (int step = 0; step < 3000; ++step) {
    std::vector<size_t> sizes(1 + rng() % 4);
    for (auto& s : sizes) s = rng() % 900;
    if (step % 97 == 0) sizes.push_back(9000);  // larger than the log
    const bool fits = o.j->Fits(sizes);
    const uint64_t next = o.j->next_sequence();
    bool all = true;
    for (size_t s : sizes) {
      if (!o.j->Append(std::vector<std::byte>(s), 0).ok()) {
        all = false;
        break;
      }
    }
    BOOST_TEST_REQUIRE(fits == all, "step " << step);
    if (o.j->next_sequence() != next && !all) ++partly_appended;
    BOOST_TEST_REQUIRE(o.j->Commit().ok());
    if (!fits) {
      ++refused;
      if (o.j->committed_sequence() >= o.j->head_sequence()) {
        BOOST_TEST_REQUIRE(o.j->Trim(o.j->committed_sequence() - rng() % 3).ok());
      }
    }
  }
  BOOST_TEST(refused > 100);
  BOOST_TEST(partly_appended > 10);  // Fits() looked past the first record
}

}  // namespace
}  // namespace vnvram::journal
