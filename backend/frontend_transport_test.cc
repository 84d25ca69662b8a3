// FrontendTransport: every value a hostile frontend can write is refused
// with a one-line, printable message; good values parse.
#define BOOST_TEST_MODULE frontend_transport
#include "backend/frontend_transport.h"

#include <boost/test/unit_test.hpp>
#include <map>

#include "xenstore-schema/schema.h"

namespace vnvram::backend {
namespace {

namespace fe = schema::fe;
using Keys = std::map<std::string, std::string, std::less<>>;

FrontendKeyReader Reader(const Keys& keys) {
  return [&keys](std::string_view key) -> Result<std::string> {
    auto it = keys.find(key);
    if (it == keys.end()) return Status::NotFound(std::string(key));
    return it->second;
  };
}

Keys Good() {
  return {{std::string(fe::kRingRef), "8"},
          {std::string(fe::kEventChannel), "5"},
          {std::string(fe::kProtocol), std::string(fe::kProtocolX86_64Abi)}};
}

BOOST_AUTO_TEST_CASE(SinglePageRingParses) {
  const Keys k = Good();
  auto t = ReadFrontendTransport(Reader(k), 4);
  BOOST_TEST_REQUIRE(t.ok(), t.status().ToString());
  BOOST_TEST(t->ring_order == 0u);
  BOOST_TEST(t->ring_refs.size() == 1u);
  BOOST_TEST(t->ring_refs[0] == 8u);
  BOOST_TEST(t->port == 5u);
}

BOOST_AUTO_TEST_CASE(MultiPageRingUsesIndexedRefs) {
  Keys k = Good();
  k[std::string(fe::kRingPageOrder)] = "2";
  for (uint32_t i = 0; i < 4; ++i) k[fe::RingRefN(i)] = std::to_string(100 + i);
  auto t = ReadFrontendTransport(Reader(k), 4);
  BOOST_TEST_REQUIRE(t.ok(), t.status().ToString());
  BOOST_TEST(t->ring_refs.size() == 4u);
  BOOST_TEST(t->ring_refs[3] == 103u);
  // A missing page ref is refused.
  k.erase(fe::RingRefN(3));
  BOOST_TEST(!ReadFrontendTransport(Reader(k), 4).ok());
  // An order above what the backend offers is refused.
  BOOST_TEST(!ReadFrontendTransport(Reader(k), 1).ok());
}

BOOST_AUTO_TEST_CASE(HostileValuesAreRefusedWithAPrintableLine) {
  struct Case {
    std::string_view key;
    std::string value;
  };
  const std::string nul(
      "1\0"
      "2",
      3);
  const std::string huge(5000, '9');
  const std::vector<Case> cases = {
      {fe::kRingRef, ""},           {fe::kRingRef, "-1"},       {fe::kRingRef, "+1"},
      {fe::kRingRef, "0x8"},        {fe::kRingRef, " 8"},       {fe::kRingRef, "8 "},
      {fe::kRingRef, "4294967296"}, {fe::kRingRef, nul},        {fe::kRingRef, huge},
      {fe::kEventChannel, "0"},     {fe::kEventChannel, "abc"}, {fe::kEventChannel, "1e3"},
      {fe::kProtocol, "sparc-abi"}, {fe::kProtocol, ""},        {fe::kProtocol, "x86_64-abi "},
      {fe::kRingPageOrder, "5"},    {fe::kRingPageOrder, "-0"}, {fe::kRingPageOrder, huge},
      {fe::kRingPageOrder, "\xff"},
  };
  for (const Case& c : cases) {
    Keys k = Good();
    k[std::string(c.key)] = c.value;
    auto t = ReadFrontendTransport(Reader(k), 4);
    BOOST_TEST_CONTEXT(c.key << " = '" << Printable(c.value) << "'") {
      BOOST_TEST_REQUIRE(!t.ok());
      BOOST_TEST((t.status().code() == Code::kInvalidArgument));
      const std::string& m = t.status().message();
      BOOST_TEST(m.size() < 200u);
      BOOST_TEST(Printable(m, m.size()) == m, m);
    }
  }
}

BOOST_AUTO_TEST_CASE(MissingRequiredKeysAreRefused) {
  for (std::string_view key : {fe::kRingRef, fe::kEventChannel}) {
    Keys k = Good();
    k.erase(std::string(key));
    BOOST_TEST(!ReadFrontendTransport(Reader(k), 4).ok(), key);
  }
  Keys k = Good();
  k.erase(std::string(fe::kProtocol));
  BOOST_TEST(ReadFrontendTransport(Reader(k), 4).ok());
}

}  // namespace
}  // namespace vnvram::backend
