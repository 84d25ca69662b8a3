#include "common/endian.h"

#include <array>
#include <boost/test/unit_test.hpp>

namespace vnvram {
namespace {

BOOST_AUTO_TEST_SUITE(EndianTest)

BOOST_AUTO_TEST_CASE(LittleEndianByteOrderIsExplicit) {
  std::array<std::byte, 8> buf{};
  StoreLE<uint32_t>(buf.data(), 0x11223344u);
  BOOST_TEST(static_cast<int>(buf[0]) == 0x44);
  BOOST_TEST(static_cast<int>(buf[3]) == 0x11);
  BOOST_TEST(LoadLE<uint32_t>(buf.data()) == 0x11223344u);
  StoreBE<uint16_t>(buf.data(), 0xABCDu);
  BOOST_TEST(static_cast<int>(buf[0]) == 0xAB);
  BOOST_TEST(LoadBE<uint16_t>(buf.data()) == 0xABCDu);
}

BOOST_AUTO_TEST_CASE(UnalignedAccessWorks) {
  std::array<std::byte, 16> buf{};
  StoreLE<uint64_t>(buf.data() + 3, 0x0102030405060708ull);
  BOOST_TEST(LoadLE<uint64_t>(buf.data() + 3) == 0x0102030405060708ull);
}

BOOST_AUTO_TEST_CASE(ByteSwapIsConstexpr) {
  static_assert(ByteSwap<uint16_t>(0x1234) == 0x3412);
  static_assert(ByteSwap<uint32_t>(0x11223344u) == 0x44332211u);
  BOOST_TEST(ByteSwap<uint64_t>(1) == (uint64_t{1} << 56));
}

BOOST_AUTO_TEST_CASE(WriterAndReaderRoundTrip) {
  std::array<std::byte, 15> buf{};
  ByteWriter w(buf);
  BOOST_TEST(w.PutLE<uint8_t>(7));
  BOOST_TEST(w.PutLE<uint16_t>(0xBEEF));
  BOOST_TEST(w.PutLE<uint64_t>(42));
  const std::array<std::byte, 4> tail{std::byte{1}, std::byte{2}, std::byte{3}, std::byte{4}};
  BOOST_TEST(w.PutBytes(tail));
  BOOST_TEST(w.size() == 15u);
  BOOST_TEST(!w.PutLE<uint8_t>(1));
  BOOST_TEST(w.overflowed());

  ByteReader r(buf);
  uint8_t a = 0;
  uint16_t b = 0;
  uint64_t c = 0;
  std::span<const std::byte> d;
  BOOST_TEST(r.GetLE(&a));
  BOOST_TEST(r.GetLE(&b));
  BOOST_TEST(r.GetLE(&c));
  BOOST_TEST(r.GetBytes(4, &d));
  BOOST_TEST(a == 7);
  BOOST_TEST(b == 0xBEEF);
  BOOST_TEST(c == 42u);
  BOOST_TEST(static_cast<int>(d[3]) == 4);
  BOOST_TEST(r.remaining() == 0u);
}

BOOST_AUTO_TEST_CASE(ShortInputFailsEveryLaterRead) {
  std::array<std::byte, 3> buf{};
  ByteReader r(buf);
  uint32_t v = 0;
  BOOST_TEST(!r.GetLE(&v));
  BOOST_TEST(r.failed());
  uint8_t small = 0;
  BOOST_TEST(!r.GetLE(&small));
  std::span<const std::byte> bytes;
  BOOST_TEST(!r.GetBytes(SIZE_MAX, &bytes));
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace vnvram
