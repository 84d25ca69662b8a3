#include "common/crc32c.h"

#include <boost/test/unit_test.hpp>
#include <string_view>
#include <vector>

namespace vnvram {
namespace {

std::span<const std::byte> Bytes(std::string_view s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

BOOST_AUTO_TEST_SUITE(Crc32cTest)

BOOST_AUTO_TEST_CASE(StandardCheckValue) {
  BOOST_TEST(Crc32c(Bytes("123456789")) == 0xE3069283u);
  BOOST_TEST(Crc32cExtendSoftware(0, Bytes("123456789")) == 0xE3069283u);
  BOOST_TEST(Crc32c({}) == 0u);
}

// RFC 3720 (iSCSI) appendix B.4 test vectors.
BOOST_AUTO_TEST_CASE(Rfc3720Vectors) {
  std::vector<std::byte> buf(32);
  BOOST_TEST(Crc32c(buf) == 0x8A9136AAu);
  for (auto& b : buf) b = std::byte{0xFF};
  BOOST_TEST(Crc32c(buf) == 0x62A8AB43u);
  for (size_t i = 0; i < 32; ++i) buf[i] = std::byte(i);
  BOOST_TEST(Crc32c(buf) == 0x46DD794Eu);
  for (size_t i = 0; i < 32; ++i) buf[i] = std::byte(31 - i);
  BOOST_TEST(Crc32c(buf) == 0x113FDB5Cu);
}

BOOST_AUTO_TEST_CASE(ExtendEqualsOneShotAtEverySplit) {
  std::vector<std::byte> buf(97);
  for (size_t i = 0; i < buf.size(); ++i) buf[i] = std::byte((i * 131 + 7) & 0xFF);
  const uint32_t whole = Crc32c(buf);
  for (size_t cut = 0; cut <= buf.size(); ++cut) {
    const std::span<const std::byte> s(buf);
    BOOST_TEST(Crc32cExtend(Crc32c(s.first(cut)), s.subspan(cut)) == whole);
  }
}

BOOST_AUTO_TEST_CASE(HardwareAndSoftwareAgreeAtEveryAlignmentAndLength) {
  BOOST_TEST_MESSAGE("hardware crc32c: " << (Crc32cHardwareAvailable() ? "yes" : "no"));
  std::vector<std::byte> buf(4096 + 16);
  uint64_t x = 0x9E3779B97F4A7C15ull;
  for (auto& b : buf) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    b = std::byte(x & 0xFF);
  }
  for (size_t align = 0; align < 8; ++align) {
    for (size_t len : {0u, 1u, 7u, 8u, 9u, 63u, 64u, 4095u, 4096u}) {
      const std::span<const std::byte> s = std::span<const std::byte>(buf).subspan(align, len);
      BOOST_TEST(Crc32c(s) == Crc32cExtendSoftware(0, s), "align " << align << " len " << len);
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace vnvram
