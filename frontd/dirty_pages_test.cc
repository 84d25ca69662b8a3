// DirtyPages: marking, whole-page clearing, merged runs clipped to the
// region.
#include "frontd/dirty_pages.h"

#include <boost/test/unit_test.hpp>

namespace vnvram::frontd {
namespace {

BOOST_AUTO_TEST_CASE(MarkTouchesEveryPageOfTheRange) {
  DirtyPages d(64 * 4096);
  BOOST_TEST(d.empty());
  d.Mark(4095, 2);  // straddles pages 0 and 1
  BOOST_TEST(d.dirty_pages() == 2u);
  d.Mark(0, 1);  // already dirty
  BOOST_TEST(d.dirty_pages() == 2u);
  d.Mark(10 * 4096, 0);  // nothing
  BOOST_TEST(d.dirty_pages() == 2u);
  const auto runs = d.Take();
  BOOST_TEST_REQUIRE(runs.size() == 1u);
  BOOST_TEST((runs[0] == ByteRun{0, 2 * 4096}));
  BOOST_TEST(d.empty());
  BOOST_TEST(d.Take().empty());
}

BOOST_AUTO_TEST_CASE(RunsAreSeparateUnlessWithinTheMergeGap) {
  DirtyPages d(256 * 4096);
  d.Mark(0, 4096);
  d.Mark(3 * 4096, 4096);    // gap of 2 pages
  d.Mark(100 * 4096, 8192);  // far away, across a 64-page word boundary below
  d.Mark(127 * 4096, 4096);
  d.Mark(128 * 4096, 4096);  // crosses the word boundary with 127
  auto copy = d;
  const auto apart = d.Take(0);
  BOOST_TEST_REQUIRE(apart.size() == 4u);
  BOOST_TEST((apart[0] == ByteRun{0, 4096}));
  BOOST_TEST((apart[1] == ByteRun{3 * 4096, 4096}));
  BOOST_TEST((apart[2] == ByteRun{100 * 4096, 2 * 4096}));
  BOOST_TEST((apart[3] == ByteRun{127 * 4096, 2 * 4096}));
  const auto merged = copy.Take(2);
  BOOST_TEST_REQUIRE(merged.size() == 3u);
  BOOST_TEST((merged[0] == ByteRun{0, 4 * 4096}));
}

BOOST_AUTO_TEST_CASE(ClearCoveredKeepsPartialPages) {
  DirtyPages d(16 * 4096);
  d.Mark(0, 16 * 4096);
  d.ClearCovered(100, 3 * 4096);  // pages 1 and 2 are whole inside; 0 and 3 partial
  BOOST_TEST(d.dirty_pages() == 14u);
  d.ClearCovered(4096, 4096);
  BOOST_TEST(d.dirty_pages() == 14u);  // already clean
  d.ClearCovered(0, 16 * 4096);
  BOOST_TEST(d.empty());
}

BOOST_AUTO_TEST_CASE(RegionNotAWholeNumberOfPages) {
  DirtyPages d(3 * 4096 + 100);
  d.Mark(3 * 4096 + 50, 1000);  // clipped at the region's end
  auto runs = d.Take();
  BOOST_TEST_REQUIRE(runs.size() == 1u);
  BOOST_TEST((runs[0] == ByteRun{3 * 4096, 100}));
  d.Mark(3 * 4096, 100);
  d.ClearCovered(3 * 4096, 100);  // reaches the end: the last page counts as covered
  BOOST_TEST(d.empty());
  d.Mark(5 * 4096, 10);  // beyond the region: ignored
  BOOST_TEST(d.empty());
}

}  // namespace
}  // namespace vnvram::frontd
