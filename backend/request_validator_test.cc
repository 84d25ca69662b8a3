#define BOOST_TEST_MODULE backend_request_validator
#include "backend/request_validator.h"

#include <boost/test/unit_test.hpp>
#include <cstdint>
#include <limits>

namespace vnvram::backend {
namespace {

constexpr uint64_t kRegion = 1 << 20;
constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();

vnvramif_request Req(uint8_t op, uint64_t offset = 0, uint64_t length = 0) {
  vnvramif_request r{};
  r.id = 42;
  r.operation = op;
  r.offset = offset;
  r.length = length;
  return r;
}

vnvramif_request Copy(uint8_t op, uint64_t offset, uint64_t length, uint8_t segs,
                      uint16_t page_offset = 0) {
  vnvramif_request r = Req(op, offset, length);
  r.nr_segments = segs;
  r.page_offset = page_offset;
  for (uint8_t i = 0; i < VNVRAMIF_MAX_SEGMENTS; ++i) r.gref[i] = 100u + i;
  return r;
}

void ExpectReject(const vnvramif_request& r, int16_t status) {
  const Validation v = ValidateRequest(r, kRegion);
  BOOST_TEST_REQUIRE(!v.ok());
  BOOST_TEST(v.error().status == status);
  BOOST_TEST(v.error().reason != nullptr);
  BOOST_TEST(v.error().reason[0] != '\0');
}

BOOST_AUTO_TEST_SUITE(RequestValidatorTest)

BOOST_AUTO_TEST_CASE(PersistInsideRegionIsAcceptedWithItsRange) {
  const Validation v = ValidateRequest(Req(VNVRAMIF_OP_PERSIST, 4096, 512), kRegion);
  BOOST_TEST_REQUIRE(v.ok());
  BOOST_TEST(v.request().id == 42u);
  BOOST_TEST((v.request().op == Op::kPersist));
  BOOST_TEST(v.request().offset == 4096u);
  BOOST_TEST(v.request().length == 512u);
  BOOST_TEST(v.request().nr_segments == 0u);
}

BOOST_AUTO_TEST_CASE(PersistOfTheWholeRegionAndOfItsLastByteAreAccepted) {
  BOOST_TEST(ValidateRequest(Req(VNVRAMIF_OP_PERSIST, 0, kRegion), kRegion).ok());
  BOOST_TEST(ValidateRequest(Req(VNVRAMIF_OP_PERSIST, kRegion - 1, 1), kRegion).ok());
}

BOOST_AUTO_TEST_CASE(EmptyPersistIsAcceptedUpToTheEndOfTheRegion) {
  BOOST_TEST(ValidateRequest(Req(VNVRAMIF_OP_PERSIST, 0, 0), kRegion).ok());
  BOOST_TEST(ValidateRequest(Req(VNVRAMIF_OP_PERSIST, kRegion, 0), kRegion).ok());
  ExpectReject(Req(VNVRAMIF_OP_PERSIST, kRegion + 1, 0), VNVRAMIF_RSP_ERANGE);
}

BOOST_AUTO_TEST_CASE(RangePastTheEndIsErange) {
  ExpectReject(Req(VNVRAMIF_OP_PERSIST, kRegion, 1), VNVRAMIF_RSP_ERANGE);
  ExpectReject(Req(VNVRAMIF_OP_PERSIST, kRegion - 1, 2), VNVRAMIF_RSP_ERANGE);
  ExpectReject(Req(VNVRAMIF_OP_PERSIST, 0, kRegion + 1), VNVRAMIF_RSP_ERANGE);
  ExpectReject(Req(VNVRAMIF_OP_PERSIST, kMax, 0), VNVRAMIF_RSP_ERANGE);
}

BOOST_AUTO_TEST_CASE(OffsetPlusLengthThatWrapsIsErange) {
  // offset + length wraps to a small number: a naive "offset + length <=
  // size" check would pass these.
  ExpectReject(Req(VNVRAMIF_OP_PERSIST, 4096, kMax - 4095), VNVRAMIF_RSP_ERANGE);
  ExpectReject(Req(VNVRAMIF_OP_PERSIST, 1, kMax), VNVRAMIF_RSP_ERANGE);
  ExpectReject(Copy(VNVRAMIF_OP_WRITE, kMax - 10, 100, 1), VNVRAMIF_RSP_ERANGE);
}

BOOST_AUTO_TEST_CASE(UnknownOperationIsEopnotsupp) {
  ExpectReject(Req(VNVRAMIF_OP_COUNT), VNVRAMIF_RSP_EOPNOTSUPP);
  ExpectReject(Req(255), VNVRAMIF_RSP_EOPNOTSUPP);
}

BOOST_AUTO_TEST_CASE(NonZeroFlagsAreEinvalForEveryOperation) {
  for (uint8_t op = 0; op < VNVRAMIF_OP_COUNT; ++op) {
    vnvramif_request r =
        op == VNVRAMIF_OP_WRITE || op == VNVRAMIF_OP_READ ? Copy(op, 0, 16, 1) : Req(op, 0, 16);
    BOOST_TEST(ValidateRequest(r, kRegion).ok());
    r.flags = 0x80000000u;
    ExpectReject(r, VNVRAMIF_RSP_EINVAL);
  }
}

BOOST_AUTO_TEST_CASE(SegmentsOrPageOffsetOnANonCopyOperationAreEinval) {
  for (uint8_t op :
       {VNVRAMIF_OP_PERSIST, VNVRAMIF_OP_FLUSH, VNVRAMIF_OP_BARRIER, VNVRAMIF_OP_GET_INFO}) {
    vnvramif_request r = Req(op);
    r.nr_segments = 1;
    ExpectReject(r, VNVRAMIF_RSP_EINVAL);
    r = Req(op);
    r.page_offset = 8;
    ExpectReject(r, VNVRAMIF_RSP_EINVAL);
  }
}

BOOST_AUTO_TEST_CASE(FlushBarrierAndGetInfoIgnoreOffsetAndLength) {
  for (uint8_t op : {VNVRAMIF_OP_FLUSH, VNVRAMIF_OP_BARRIER, VNVRAMIF_OP_GET_INFO}) {
    const Validation v = ValidateRequest(Req(op, kMax, kMax), kRegion);
    BOOST_TEST_REQUIRE(v.ok());
    BOOST_TEST(v.request().offset == 0u);
    BOOST_TEST(v.request().length == 0u);
  }
}

BOOST_AUTO_TEST_CASE(CopyRequestCarriesExactlyItsSegments) {
  const Validation v = ValidateRequest(Copy(VNVRAMIF_OP_READ, 100, 5000, 2, 10), kRegion);
  BOOST_TEST_REQUIRE(v.ok());
  BOOST_TEST(v.request().nr_segments == 2u);
  BOOST_TEST(v.request().page_offset == 10u);
  BOOST_TEST(v.request().segments().size() == 2u);
  BOOST_TEST(v.request().grefs[0] == 100u);
  BOOST_TEST(v.request().grefs[1] == 101u);
  for (size_t i = 2; i < VNVRAMIF_MAX_SEGMENTS; ++i) BOOST_TEST(v.request().grefs[i] == 0u);
}

BOOST_AUTO_TEST_CASE(CopyWithMaximumSegmentsFillingEveryByteIsAccepted) {
  BOOST_TEST(ValidateRequest(Copy(VNVRAMIF_OP_WRITE, 0, 8 * 4096, 8), kRegion).ok());
  BOOST_TEST(ValidateRequest(Copy(VNVRAMIF_OP_WRITE, 0, 1, 1, 4095), kRegion).ok());
  BOOST_TEST(ValidateRequest(Copy(VNVRAMIF_OP_WRITE, 0, 2, 2, 4095), kRegion).ok());
}

BOOST_AUTO_TEST_CASE(CopyWithoutSegmentsOrTooManyIsEinval) {
  ExpectReject(Copy(VNVRAMIF_OP_WRITE, 0, 16, 0), VNVRAMIF_RSP_EINVAL);
  ExpectReject(Copy(VNVRAMIF_OP_READ, 0, 16, VNVRAMIF_MAX_SEGMENTS + 1), VNVRAMIF_RSP_EINVAL);
  ExpectReject(Copy(VNVRAMIF_OP_READ, 0, 16, 255), VNVRAMIF_RSP_EINVAL);
}

BOOST_AUTO_TEST_CASE(PageOffsetOutsideTheFirstPageIsEinval) {
  ExpectReject(Copy(VNVRAMIF_OP_WRITE, 0, 1, 2, 4096), VNVRAMIF_RSP_EINVAL);
  ExpectReject(Copy(VNVRAMIF_OP_WRITE, 0, 1, 8, 65535), VNVRAMIF_RSP_EINVAL);
}

BOOST_AUTO_TEST_CASE(CopyLengthBeyondTheGrantedSegmentsIsEinval) {
  ExpectReject(Copy(VNVRAMIF_OP_WRITE, 0, 4097, 1), VNVRAMIF_RSP_EINVAL);
  ExpectReject(Copy(VNVRAMIF_OP_WRITE, 0, 4096, 1, 1), VNVRAMIF_RSP_EINVAL);
  ExpectReject(Copy(VNVRAMIF_OP_READ, 0, 8 * 4096 + 1, 8), VNVRAMIF_RSP_EINVAL);
  ExpectReject(Copy(VNVRAMIF_OP_READ, 0, kMax, 8), VNVRAMIF_RSP_EINVAL);
}

BOOST_AUTO_TEST_CASE(CopyOfZeroBytesIsEinval) {
  ExpectReject(Copy(VNVRAMIF_OP_WRITE, 0, 0, 1), VNVRAMIF_RSP_EINVAL);
}

BOOST_AUTO_TEST_CASE(CopyNamingIdleTrailingSegmentsIsEinval) {
  // 4096 bytes at page offset 0 fit in one page: a second segment would
  // only make the backend map a page for nothing.
  ExpectReject(Copy(VNVRAMIF_OP_WRITE, 0, 4096, 2), VNVRAMIF_RSP_EINVAL);
  ExpectReject(Copy(VNVRAMIF_OP_WRITE, 0, 1, 8), VNVRAMIF_RSP_EINVAL);
  ExpectReject(Copy(VNVRAMIF_OP_WRITE, 0, 4095, 2, 1), VNVRAMIF_RSP_EINVAL);
  BOOST_TEST(ValidateRequest(Copy(VNVRAMIF_OP_WRITE, 0, 4096, 2, 1), kRegion).ok());
}

BOOST_AUTO_TEST_CASE(CopyRangeIsBoundedByTheRegion) {
  ExpectReject(Copy(VNVRAMIF_OP_READ, kRegion - 10, 11, 1), VNVRAMIF_RSP_ERANGE);
  BOOST_TEST(ValidateRequest(Copy(VNVRAMIF_OP_READ, kRegion - 10, 10, 1), kRegion).ok());
}

BOOST_AUTO_TEST_CASE(FirstFailingRuleDecidesTheStatus) {
  // Unknown op beats bad flags; bad segments beat a bad range.
  vnvramif_request r = Req(200, kMax, kMax);
  r.flags = 1;
  ExpectReject(r, VNVRAMIF_RSP_EOPNOTSUPP);
  ExpectReject(Copy(VNVRAMIF_OP_WRITE, kMax, 10, 0), VNVRAMIF_RSP_EINVAL);
}

BOOST_AUTO_TEST_CASE(EmptyRegionAcceptsOnlyEmptyRanges) {
  BOOST_TEST(ValidateRequest(Req(VNVRAMIF_OP_PERSIST, 0, 0), 0).ok());
  BOOST_TEST(!ValidateRequest(Req(VNVRAMIF_OP_PERSIST, 0, 1), 0).ok());
  BOOST_TEST(!ValidateRequest(Copy(VNVRAMIF_OP_READ, 0, 1, 1), 0).ok());
}

BOOST_AUTO_TEST_CASE(OpNameNamesEveryOperation) {
  BOOST_TEST(std::string(OpName(VNVRAMIF_OP_PERSIST)) == "persist");
  BOOST_TEST(std::string(OpName(VNVRAMIF_OP_GET_INFO)) == "get-info");
  BOOST_TEST(std::string(OpName(99)) == "unknown");
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace vnvram::backend
