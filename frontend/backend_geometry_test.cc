#define BOOST_TEST_MODULE frontend_backend_geometry
#include "frontend/backend_geometry.h"

#include <boost/test/unit_test.hpp>
#include <vector>

#include "common/endian.h"
#include "vnvram/vnvramif.h"

namespace vnvram::frontend {
namespace {

std::vector<std::byte> Dir(size_t pages, const std::vector<uint32_t>& refs) {
  std::vector<std::byte> d(pages * VNVRAMIF_PAGE_SIZE);
  for (size_t i = 0; i < refs.size(); ++i) StoreLE<uint32_t>(d.data() + 4 * i, refs[i]);
  return d;
}

BOOST_AUTO_TEST_CASE(ValidDirectoryParsesInRegionOrder) {
  auto r = ParsePageDirectory(Dir(1, {11, 12, 13}), 3);
  BOOST_TEST_REQUIRE(r.ok(), r.status().ToString());
  BOOST_TEST((*r == std::vector<platform::GrantRef>{11, 12, 13}));
}

BOOST_AUTO_TEST_CASE(TwoDirectoryPagesCoverMoreThan1024Pages) {
  std::vector<uint32_t> refs;
  for (uint32_t i = 0; i < 1500; ++i) refs.push_back(100 + i);
  auto r = ParsePageDirectory(Dir(2, refs), 1500);
  BOOST_TEST_REQUIRE(r.ok(), r.status().ToString());
  BOOST_TEST(r->size() == 1500u);
  BOOST_TEST(r->back() == 1599u);
}

BOOST_AUTO_TEST_CASE(NonZeroPaddingIsCorruption) {
  auto r = ParsePageDirectory(Dir(1, {11, 12, 13}), 2);
  BOOST_TEST(!r.ok());
  BOOST_TEST((r.status().code() == Code::kCorruption));
}

BOOST_AUTO_TEST_CASE(RepeatedRefIsCorruption) {
  auto r = ParsePageDirectory(Dir(1, {11, 12, 11}), 3);
  BOOST_TEST(!r.ok());
  BOOST_TEST((r.status().code() == Code::kCorruption));
}

BOOST_AUTO_TEST_CASE(DirectoryTooSmallForTheRegionIsCorruption) {
  auto r = ParsePageDirectory(Dir(1, {}), 1025);
  BOOST_TEST(!r.ok());
  auto odd = ParsePageDirectory(std::vector<std::byte>(100), 1);
  BOOST_TEST(!odd.ok());
}

}  // namespace
}  // namespace vnvram::frontend
