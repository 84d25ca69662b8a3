// DirtyHistory: chunk arithmetic, coverage after eviction and reset, and a
// randomized comparison with a naive model that keeps every record.
#define BOOST_TEST_MODULE replication_dirty_history
#include "backend/replication/dirty_history.h"

#include <boost/test/unit_test.hpp>
#include <cstdint>
#include <optional>
#include <random>
#include <vector>

namespace vnvram::replication {
namespace {

using Chunks = std::vector<uint32_t>;
constexpr uint32_t kChunk = 4096;

// ChunksSince that must be answerable.
Chunks Since(const DirtyHistory& h, uint64_t since) {
  auto c = h.ChunksSince(since);
  BOOST_TEST_REQUIRE(c.has_value(), "ChunksSince(" << since << ") is nullopt");
  return *c;
}

BOOST_AUTO_TEST_CASE(ChunkCountRoundsUp) {
  BOOST_TEST(DirtyHistory(1, kChunk).chunk_count() == 1u);
  BOOST_TEST(DirtyHistory(kChunk, kChunk).chunk_count() == 1u);
  BOOST_TEST(DirtyHistory(kChunk + 1, kChunk).chunk_count() == 2u);
  BOOST_TEST(DirtyHistory(uint64_t{1} << 30, 64u << 10).chunk_count() == 16384u);
  BOOST_TEST(DirtyHistory(uint64_t{1} << 30, 64u << 10).chunk_size() == (64u << 10));
}

BOOST_AUTO_TEST_CASE(FreshHistoryCoversNothingNewAndAnswersEmpty) {
  DirtyHistory h(16 * kChunk, kChunk);
  BOOST_TEST(h.base_seq() == 0u);
  BOOST_TEST(h.latest_seq() == 0u);
  BOOST_TEST(Since(h, 0).empty());
}

BOOST_AUTO_TEST_CASE(RangesSpanningChunkBoundaries) {
  DirtyHistory h(16 * kChunk, kChunk);
  h.Record(1, kChunk - 100, 200);           // straddles 0|1
  h.Record(2, 3 * kChunk, 2 * kChunk);      // exactly chunks 3 and 4, ends on a boundary
  h.Record(3, 7 * kChunk - 1, 2);           // last byte of 6, first byte of 7
  h.Record(4, 9 * kChunk + 1, 3 * kChunk);  // 9..12, unaligned at both ends
  BOOST_TEST(Since(h, 0) == (Chunks{0, 1, 3, 4, 6, 7, 9, 10, 11, 12}),
             boost::test_tools::per_element());
  BOOST_TEST(h.latest_seq() == 4u);
}

BOOST_AUTO_TEST_CASE(LastPartialChunk) {
  const uint64_t size = 10 * kChunk + 100;
  DirtyHistory h(size, kChunk);
  BOOST_TEST(h.chunk_count() == 11u);
  h.Record(1, size - 1, 1);
  BOOST_TEST(Since(h, 0) == (Chunks{10}), boost::test_tools::per_element());
  h.Record(2, 10 * kChunk, 100);  // the whole partial chunk
  h.Record(3, 9 * kChunk + 5, size - (9 * kChunk + 5));
  BOOST_TEST(Since(h, 1) == (Chunks{9, 10}), boost::test_tools::per_element());
  h.Record(4, 0, size);  // the whole region
  BOOST_TEST_REQUIRE(Since(h, 3).size() == 11u);
  BOOST_TEST(Since(h, 3).back() == 10u);
}

BOOST_AUTO_TEST_CASE(SinceInTheMiddleIsSortedAndDeduplicated) {
  DirtyHistory h(64 * kChunk, kChunk);
  h.Record(1, 0, kChunk);            // 0
  h.Record(2, 40 * kChunk, 10);      // 40
  h.Record(3, 5 * kChunk, 1);        // 5
  h.Record(3, 40 * kChunk + 7, 1);   // 40 again, same seq
  h.Record(4, 20 * kChunk, kChunk);  // 20
  h.Record(5, 5 * kChunk, kChunk);   // 5 again
  BOOST_TEST(Since(h, 0) == (Chunks{0, 5, 20, 40}), boost::test_tools::per_element());
  BOOST_TEST(Since(h, 1) == (Chunks{5, 20, 40}), boost::test_tools::per_element());
  BOOST_TEST(Since(h, 2) == (Chunks{5, 20, 40}), boost::test_tools::per_element());
  BOOST_TEST(Since(h, 3) == (Chunks{5, 20}), boost::test_tools::per_element());
  BOOST_TEST(Since(h, 4) == (Chunks{5}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(SinceAtOrAfterLatestIsEmpty) {
  DirtyHistory h(8 * kChunk, kChunk);
  h.Record(7, 0, 1);
  BOOST_TEST(Since(h, 7).empty());
  BOOST_TEST(Since(h, 8).empty());
  BOOST_TEST(Since(h, UINT64_MAX).empty());
  BOOST_TEST(Since(h, 6) == (Chunks{0}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(RangesOfOneSeqMergeOnlyWhenTheyTouch) {
  DirtyHistory h(64 * kChunk, kChunk);
  h.Record(1, 0, 1);
  h.Record(1, kChunk, 1);  // touches chunk 0: merged into [0, 1]
  h.Record(1, 10, 1);      // inside: merged
  BOOST_TEST(h.entry_count() == 1u);
  h.Record(1, 3 * kChunk, 1);  // a gap: a new entry
  BOOST_TEST(h.entry_count() == 2u);
  h.Record(2, 3 * kChunk, kChunk);  // same chunk, newer seq: never merged across seqs
  BOOST_TEST(h.entry_count() == 3u);
  BOOST_TEST(Since(h, 0) == (Chunks{0, 1, 3}), boost::test_tools::per_element());
  BOOST_TEST(Since(h, 1) == (Chunks{3}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(EvictionMakesOldSinceUnanswerableAndRecentSinceStillWorks) {
  DirtyHistory h(64 * kChunk, kChunk, /*max_entries=*/4);
  for (uint64_t s = 1; s <= 6; ++s) h.Record(s, s * 2 * kChunk, 1);  // chunk 2s
  BOOST_TEST(h.entry_count() == 4u);
  BOOST_TEST(h.base_seq() == 2u);  // entries of 1 and 2 dropped
  BOOST_TEST(!h.ChunksSince(0).has_value());
  BOOST_TEST(!h.ChunksSince(1).has_value());
  BOOST_TEST(Since(h, 2) == (Chunks{6, 8, 10, 12}), boost::test_tools::per_element());
  BOOST_TEST(Since(h, 5) == (Chunks{12}), boost::test_tools::per_element());
  BOOST_TEST(Since(h, 6).empty());
}

BOOST_AUTO_TEST_CASE(SharedSeqWithPartialEvictionIsNoLongerCovered) {
  DirtyHistory h(64 * kChunk, kChunk, /*max_entries=*/3);
  h.Record(1, 0, 1);           // chunk 0
  h.Record(2, 2 * kChunk, 1);  // chunk 2
  h.Record(2, 5 * kChunk, 1);  // chunk 5
  h.Record(2, 8 * kChunk, 1);  // chunk 8: drops seq 1
  BOOST_TEST(h.base_seq() == 1u);
  BOOST_TEST(Since(h, 1) == (Chunks{2, 5, 8}), boost::test_tools::per_element());
  h.Record(3, 9 * kChunk, 1);  // drops (2, chunk 2): seq 2 is only partly held
  BOOST_TEST(h.base_seq() == 2u);
  // Answering {5, 8, 9} would miss chunk 2.
  BOOST_TEST(!h.ChunksSince(1).has_value());
  BOOST_TEST(Since(h, 2) == (Chunks{9}), boost::test_tools::per_element());
  // The rest of seq 2 is useless and was let go.
  BOOST_TEST(h.entry_count() == 1u);
}

BOOST_AUTO_TEST_CASE(PartialEvictionOfTheLatestSeq) {
  DirtyHistory h(64 * kChunk, kChunk, /*max_entries=*/1);
  h.Record(5, 0, 1);
  h.Record(5, 4 * kChunk, 1);  // drops the first range of 5
  BOOST_TEST(h.base_seq() == 5u);
  BOOST_TEST(h.latest_seq() == 5u);
  BOOST_TEST(!h.ChunksSince(4).has_value());
  BOOST_TEST(Since(h, 5).empty());
  h.Record(5, 8 * kChunk, 1);  // more of 5: already behind the base
  BOOST_TEST(!h.ChunksSince(4).has_value());
  h.Record(6, 9 * kChunk, 1);
  BOOST_TEST(Since(h, 5) == (Chunks{9}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(ResetForgetsEverything) {
  DirtyHistory h(64 * kChunk, kChunk);
  for (uint64_t s = 1; s <= 5; ++s) h.Record(s, s * kChunk, 1);
  h.Reset(10);
  BOOST_TEST(h.base_seq() == 10u);
  BOOST_TEST(h.latest_seq() == 10u);
  BOOST_TEST(h.entry_count() == 0u);
  BOOST_TEST(!h.ChunksSince(0).has_value());
  BOOST_TEST(!h.ChunksSince(9).has_value());
  BOOST_TEST(Since(h, 10).empty());
  h.Record(10, 0, 1);  // at the base: covered by it, not stored
  BOOST_TEST(h.entry_count() == 0u);
  h.Record(11, 30 * kChunk, 1);
  BOOST_TEST(Since(h, 10) == (Chunks{30}), boost::test_tools::per_element());
  // A new epoch starts again from sequence 0.
  h.Reset(0);
  BOOST_TEST(Since(h, 0).empty());
  h.Record(1, 0, 1);
  BOOST_TEST(Since(h, 0) == (Chunks{0}), boost::test_tools::per_element());
}

// A full-size history (1 GiB region, 4 KiB chunks, 65536 entries) and a
// naive model that keeps every record: whenever the history answers, it
// answers what the model says, and it must answer every `since` whose newer
// records number at most max_entries (each Record adds at most one entry).
BOOST_AUTO_TEST_CASE(MatchesNaiveModelOnALargeRandomHistory) {
  const uint64_t size = uint64_t{1} << 30;
  const size_t max_entries = DirtyHistory::kDefaultMaxEntries;
  DirtyHistory h(size, kChunk, max_entries);
  struct Rec {
    uint64_t seq, offset, length;
  };
  std::vector<Rec> model;
  std::mt19937_64 rng(20240611);
  uint64_t seq = 0;
  auto check = [&](uint64_t since) {
    auto got = h.ChunksSince(since);
    size_t newer = 0;
    for (const Rec& r : model) newer += r.seq > since ? 1 : 0;
    if (newer <= max_entries) BOOST_TEST_REQUIRE(got.has_value(), "since " << since);
    BOOST_TEST_REQUIRE((got.has_value() == (since >= h.base_seq())));
    if (!got) return;
    std::vector<char> dirty(h.chunk_count(), 0);
    for (const Rec& r : model) {
      if (r.seq <= since) continue;
      for (uint64_t c = r.offset / kChunk; c <= (r.offset + r.length - 1) / kChunk; ++c) {
        dirty[c] = 1;
      }
    }
    Chunks want;
    for (uint32_t c = 0; c < dirty.size(); ++c) {
      if (dirty[c]) want.push_back(c);
    }
    BOOST_TEST_REQUIRE((*got == want), "since " << since);
  };
  for (int round = 0; round < 3; ++round) {
    const size_t n = max_entries + max_entries / 2;
    for (size_t i = 0; i < n; ++i) {
      if (rng() % 3 != 0) ++seq;  // a third of the records share the previous seq
      if (seq == 0) seq = 1;
      const uint64_t offset = rng() % size;
      // Mostly small writes, sometimes a large one (up to 8 MiB).
      const uint64_t max_len =
          std::min<uint64_t>(rng() % 100 == 0 ? 8 << 20 : 64 << 10, size - offset);
      const uint64_t length = 1 + rng() % max_len;
      h.Record(seq, offset, length);
      model.push_back({seq, offset, length});
    }
    BOOST_TEST(h.entry_count() <= max_entries);
    BOOST_TEST(h.base_seq() > 0u);  // entries were dropped
    for (const uint64_t back : {0, 1, 2, 100, 5000, 40000, 60000, 90000}) {
      if (back <= seq) check(seq - back);
    }
    check(h.base_seq());
    if (h.base_seq() > 0) check(h.base_seq() - 1);
    // A new epoch: the model starts over.
    const uint64_t base = seq / 2;
    h.Reset(base);
    model.clear();
    seq = base;
    check(base);
  }
}

}  // namespace
}  // namespace vnvram::replication
