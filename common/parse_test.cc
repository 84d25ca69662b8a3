#include "common/parse.h"

#include <boost/test/unit_test.hpp>
#include <string>

namespace vnvram {
namespace {

BOOST_AUTO_TEST_SUITE(ParseTest)

BOOST_AUTO_TEST_CASE(U64AcceptsPlainDecimal) {
  BOOST_TEST(*ParseU64("0") == 0u);
  BOOST_TEST(*ParseU64("007") == 7u);
  BOOST_TEST(*ParseU64("18446744073709551615") == UINT64_MAX);
}

BOOST_AUTO_TEST_CASE(U64RejectsEmptySignsSpacesHexTrailingAndOverflow) {
  for (const char* bad : {"", "-1", "+1", " 1", "1 ", "0x10", "12a", "1.0", "\n",
                          "18446744073709551616", "99999999999999999999999"}) {
    auto r = ParseU64(bad, "ring-ref");
    BOOST_TEST_INFO("input '" << bad << "'");
    BOOST_TEST(!r.ok());
    BOOST_TEST((r.status().code() == Code::kInvalidArgument));
    BOOST_TEST(r.status().message().rfind("ring-ref '", 0) == 0u);
  }
}

BOOST_AUTO_TEST_CASE(ErrorNamesTheBadValueAndEscapesControlBytes) {
  auto r = ParseU32(std::string("1\x01z", 3), "event-channel");
  BOOST_TEST(!r.ok());
  BOOST_TEST(r.status().message() == "event-channel '1\\x01z': not a decimal number");
}

BOOST_AUTO_TEST_CASE(HostileLongValueIsTruncatedInMessage) {
  std::string huge(10000, '9');
  auto r = ParseU64(huge, "v");
  BOOST_TEST(!r.ok());
  BOOST_TEST(r.status().message().size() < 200u);
}

BOOST_AUTO_TEST_CASE(NarrowParsersCheckTheirRange) {
  BOOST_TEST(*ParseU32("4294967295") == 4294967295u);
  BOOST_TEST(!ParseU32("4294967296").ok());
  BOOST_TEST(*ParseU16("65535") == 65535u);
  BOOST_TEST(!ParseU16("65536").ok());
  BOOST_TEST(*ParseU64InRange("5", 1, 5) == 5u);
  BOOST_TEST(!ParseU64InRange("6", 1, 5).ok());
  BOOST_TEST(!ParseU64InRange("0", 1, 5).ok());
}

BOOST_AUTO_TEST_CASE(I64HandlesBothEnds) {
  BOOST_TEST(*ParseI64("-9223372036854775808") == INT64_MIN);
  BOOST_TEST(*ParseI64("9223372036854775807") == INT64_MAX);
  BOOST_TEST(!ParseI64("9223372036854775808").ok());
  BOOST_TEST(!ParseI64("-").ok());
  BOOST_TEST(!ParseI64("--1").ok());
}

BOOST_AUTO_TEST_CASE(SizeAcceptsBinarySuffixes) {
  BOOST_TEST(*ParseSize("4096") == 4096u);
  BOOST_TEST(*ParseSize("4k") == 4096u);
  BOOST_TEST(*ParseSize("64M") == 64u << 20);
  BOOST_TEST(*ParseSize("64MiB") == 64u << 20);
  BOOST_TEST(*ParseSize("64MB") == 64u << 20);
  BOOST_TEST(*ParseSize("2G") == 2ull << 30);
  BOOST_TEST(*ParseSize("1T") == 1ull << 40);
  BOOST_TEST(*ParseSize("512B") == 512u);
}

BOOST_AUTO_TEST_CASE(SizeRejectsJunkAndOverflow) {
  for (const char* bad : {"", "M", "64X", "64Mi", "64MiBs", "64 M", "-1M", "1.5G", "17179869184G",
                          "99999999999999999999"}) {
    BOOST_TEST_INFO("input '" << bad << "'");
    BOOST_TEST(!ParseSize(bad, "size").ok());
  }
}

BOOST_AUTO_TEST_CASE(FormatSizeRoundTrips) {
  for (uint64_t v : {uint64_t{0}, uint64_t{1}, uint64_t{4096}, uint64_t{64} << 20,
                     uint64_t{3} << 30, uint64_t{4097}}) {
    BOOST_TEST(*ParseSize(FormatSize(v)) == v);
  }
  BOOST_TEST(FormatSize(64u << 20) == "64M");
}

BOOST_AUTO_TEST_CASE(DomIdStopsBeforeReservedIds) {
  BOOST_TEST(*ParseDomId("0") == 0);
  BOOST_TEST(*ParseDomId("32751") == 32751);
  BOOST_TEST(!ParseDomId("32752").ok());  // DOMID_FIRST_RESERVED
  BOOST_TEST(!ParseDomId("65535").ok());  // DOMID_INVALID
  BOOST_TEST(!ParseDomId("-1").ok());
}

BOOST_AUTO_TEST_CASE(DevIdFitsIn31Bits) {
  BOOST_TEST(*ParseDevId("51712") == 51712u);
  BOOST_TEST(*ParseDevId("2147483647") == 2147483647u);
  BOOST_TEST(!ParseDevId("2147483648").ok());
  BOOST_TEST(!ParseDevId("").ok());
}

BOOST_AUTO_TEST_CASE(UuidRoundTripsAndIsCaseInsensitive) {
  auto u = ParseUuid("0F3C2A9E-1B2D-4C5E-8F90-A1B2C3D4E5F6");
  BOOST_TEST_REQUIRE(u.ok());
  BOOST_TEST(u->ToString() == "0f3c2a9e-1b2d-4c5e-8f90-a1b2c3d4e5f6");
  BOOST_TEST(!u->IsNil());
  BOOST_TEST(ParseUuid("00000000-0000-0000-0000-000000000000")->IsNil());
}

BOOST_AUTO_TEST_CASE(UuidRejectsMalformed) {
  for (const char* bad :
       {"", "0f3c2a9e1b2d4c5e8f90a1b2c3d4e5f6", "0f3c2a9e-1b2d-4c5e-8f90-a1b2c3d4e5f",
        "0f3c2a9e-1b2d-4c5e-8f90-a1b2c3d4e5f67", "0f3c2a9e-1b2d-4c5e-8f90_a1b2c3d4e5f6",
        "0f3c2a9e-1b2d-4c5e-8f90-a1b2c3d4e5fg"}) {
    BOOST_TEST_INFO("input '" << bad << "'");
    BOOST_TEST(!ParseUuid(bad).ok());
  }
}

BOOST_AUTO_TEST_CASE(Bool01IsStrict) {
  BOOST_TEST(*ParseBool01("1"));
  BOOST_TEST(!*ParseBool01("0"));
  for (const char* bad : {"", "true", "01", "2", " 1"}) BOOST_TEST(!ParseBool01(bad).ok());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace vnvram
