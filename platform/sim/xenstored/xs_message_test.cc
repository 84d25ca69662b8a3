// The sim xenstored's framing helpers.
#define BOOST_TEST_MODULE sim_xs_message
#include "platform/sim/xenstored/xs_message.h"

#include <boost/test/unit_test.hpp>
#include <cstring>

#include "platform/sim/store/xen_xs_wire.h"

namespace vnvram::sim {
namespace {

BOOST_AUTO_TEST_SUITE(XsMessageTest)

BOOST_AUTO_TEST_CASE(EncodeThenDecodeKeepsHeaderFields) {
  const std::string msg = EncodeXsMessage(XsHeader{XS_READ, 9, 4, 0}, std::string("/a\0", 3));
  BOOST_REQUIRE(msg.size() == kXsHeaderSize + 3);
  uint8_t raw[kXsHeaderSize];
  std::memcpy(raw, msg.data(), kXsHeaderSize);
  const XsHeader h = DecodeXsHeader(raw);
  BOOST_TEST(h.type == static_cast<uint32_t>(XS_READ));
  BOOST_TEST(h.req_id == 9u);
  BOOST_TEST(h.tx_id == 4u);
  BOOST_TEST(h.len == 3u);
}

BOOST_AUTO_TEST_CASE(OneArgNeedsExactlyOneTrailingNul) {
  BOOST_TEST(*XsOneArg(std::string("/a\0", 3)) == "/a");
  BOOST_TEST(!XsOneArg("").has_value());
  BOOST_TEST(!XsOneArg("/a").has_value());
  BOOST_TEST(!XsOneArg(std::string("/a\0b\0", 5)).has_value());
}

BOOST_AUTO_TEST_CASE(StringsIgnoreUnterminatedTail) {
  const std::string payload("a\0\0bc\0tail", 10);  // the views point into it
  const auto v = XsStrings(payload);
  BOOST_REQUIRE(v.size() == 3u);
  BOOST_TEST(v[0] == "a");
  BOOST_TEST(v[1] == "");
  BOOST_TEST(v[2] == "bc");
  BOOST_TEST(XsStrings("no-nul").empty());
}

BOOST_AUTO_TEST_CASE(TypeNamesForLogs) {
  BOOST_TEST(XsTypeName(XS_DIRECTORY_PART) == "DIRECTORY_PART");
  BOOST_TEST(XsTypeName(12345) == "UNKNOWN");
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace vnvram::sim
