// nbd_protocol: every parser on good bytes, on each kind of bad bytes, and
// on a sweep of random bytes; the serialisers against hand-written frames;
// CheckRequest's verdict for each command, flag and range case.
#define BOOST_TEST_MODULE frontd_nbd_protocol
#include "frontd/nbd_protocol.h"

#include <boost/test/unit_test.hpp>
#include <random>

#include "common/endian.h"

// Byte vectors are compared whole; their elements need no printing.
BOOST_TEST_DONT_PRINT_LOG_VALUE(std::byte)

namespace vnvram {
inline std::ostream& operator<<(std::ostream& o, Code c) {
  return o << CodeName(c);
}
}  // namespace vnvram

namespace vnvram::frontd::nbd {
namespace {

std::vector<std::byte> Bytes(std::initializer_list<int> v) {
  std::vector<std::byte> out;
  for (int b : v) out.push_back(static_cast<std::byte>(b));
  return out;
}

std::vector<std::byte> Info(const std::string& name, std::vector<uint16_t> items) {
  std::vector<std::byte> d(4 + name.size() + 2 + 2 * items.size());
  StoreBE<uint32_t>(d.data(), static_cast<uint32_t>(name.size()));
  std::memcpy(d.data() + 4, name.data(), name.size());
  StoreBE<uint16_t>(d.data() + 4 + name.size(), static_cast<uint16_t>(items.size()));
  for (size_t i = 0; i < items.size(); ++i) {
    StoreBE<uint16_t>(d.data() + 6 + name.size() + 2 * i, items[i]);
  }
  return d;
}

std::array<std::byte, kRequestSize> RequestBytes(uint16_t flags, uint16_t type, uint64_t cookie,
                                                 uint64_t offset, uint32_t length) {
  std::array<std::byte, kRequestSize> b{};
  StoreBE<uint32_t>(b.data(), kRequestMagic);
  StoreBE<uint16_t>(b.data() + 4, flags);
  StoreBE<uint16_t>(b.data() + 6, type);
  StoreBE<uint64_t>(b.data() + 8, cookie);
  StoreBE<uint64_t>(b.data() + 16, offset);
  StoreBE<uint32_t>(b.data() + 24, length);
  return b;
}

constexpr uint16_t kWritable = kFlagHasFlags | kFlagSendFlush | kFlagSendFua | kFlagSendTrim |
                               kFlagSendWriteZeroes | kFlagCanMultiConn;
const ExportShape kShape{1 << 20, 1 << 16, kWritable};

Request Req(uint16_t type, uint64_t offset, uint32_t length, uint16_t flags = 0) {
  Request r;
  r.type = type;
  r.offset = offset;
  r.length = length;
  r.flags = flags;
  return r;
}

BOOST_AUTO_TEST_CASE(GreetingIsMagicMagicFlags) {
  const auto g = EncodeGreeting(kFlagFixedNewstyle | kFlagNoZeroes);
  const auto want = Bytes(
      {'N', 'B', 'D', 'M', 'A', 'G', 'I', 'C', 'I', 'H', 'A', 'V', 'E', 'O', 'P', 'T', 0x00, 0x03});
  BOOST_TEST(std::vector<std::byte>(g.begin(), g.end()) == want);
}

BOOST_AUTO_TEST_CASE(ClientFlagsKnownBitsOnly) {
  BOOST_TEST(*ParseClientFlags(Bytes({0, 0, 0, 3})) == 3u);
  BOOST_TEST(*ParseClientFlags(Bytes({0, 0, 0, 0})) == 0u);
  auto bad = ParseClientFlags(Bytes({0, 0, 0, 4}));
  BOOST_TEST(!bad.ok());
  BOOST_TEST(bad.status().message().find("0x4") != std::string::npos, bad.status().ToString());
  BOOST_TEST(!ParseClientFlags(Bytes({0x80, 0, 0, 1})).ok());
  BOOST_TEST(!ParseClientFlags(Bytes({0, 0, 1})).ok());
}

BOOST_AUTO_TEST_CASE(OptionHeaderMagicAndLengthBound) {
  std::array<std::byte, kOptionHeaderSize> b{};
  StoreBE<uint64_t>(b.data(), kOptionMagic);
  StoreBE<uint32_t>(b.data() + 8, kOptGo);
  StoreBE<uint32_t>(b.data() + 12, 10);
  OptionHeader h;
  BOOST_TEST(ParseOptionHeader(b, &h).ok());
  BOOST_TEST(h.option == kOptGo);
  BOOST_TEST(h.length == 10u);

  StoreBE<uint32_t>(b.data() + 12, kMaxOptionLength);
  BOOST_TEST(ParseOptionHeader(b, &h).ok());
  StoreBE<uint32_t>(b.data() + 12, kMaxOptionLength + 1);
  BOOST_TEST(ParseOptionHeader(b, &h).code() == Code::kResourceExhausted);
  StoreBE<uint32_t>(b.data() + 12, 0xffffffffu);
  BOOST_TEST(ParseOptionHeader(b, &h).code() == Code::kResourceExhausted);

  StoreBE<uint32_t>(b.data() + 12, 0);
  StoreBE<uint64_t>(b.data(), kInitMagic);  // the server's magic echoed back
  const Status s = ParseOptionHeader(b, &h);
  BOOST_TEST(s.code() == Code::kInvalidArgument);
  BOOST_TEST(s.message().find("magic") != std::string::npos, s.ToString());
}

BOOST_AUTO_TEST_CASE(ExportNameBoundedNoNul) {
  const std::string ok = "vnvram";
  BOOST_TEST(*ParseExportName(std::as_bytes(std::span(ok.data(), ok.size()))) == "vnvram");
  BOOST_TEST(ParseExportName({}).value().empty());
  const std::string nul("a\0b", 3);
  BOOST_TEST(!ParseExportName(std::as_bytes(std::span(nul.data(), nul.size()))).ok());
  const std::string longest(kMaxStringLength, 'x');
  BOOST_TEST(ParseExportName(std::as_bytes(std::span(longest.data(), longest.size()))).ok());
  const std::string too_long(kMaxStringLength + 1, 'x');
  BOOST_TEST(!ParseExportName(std::as_bytes(std::span(too_long.data(), too_long.size()))).ok());
}

BOOST_AUTO_TEST_CASE(InfoRequestLengthsMustAddUp) {
  auto r = ParseInfoRequest(Info("vnvram", {kInfoBlockSize, kInfoName}));
  BOOST_TEST_REQUIRE(r.ok(), r.status().ToString());
  BOOST_TEST(r->name == "vnvram");
  BOOST_TEST(r->items == (std::vector<uint16_t>{kInfoBlockSize, kInfoName}));

  auto empty = ParseInfoRequest(Info("", {}));
  BOOST_TEST_REQUIRE(empty.ok());
  BOOST_TEST(empty->name.empty());
  BOOST_TEST(empty->items.empty());

  BOOST_TEST(!ParseInfoRequest(Bytes({0, 0, 0, 0, 0})).ok());  // too short for a count
  auto extra = Info("x", {1});
  extra.push_back(std::byte{0});
  BOOST_TEST(!ParseInfoRequest(extra).ok());  // a trailing byte
  auto missing = Info("x", {1, 2});
  missing.pop_back();
  BOOST_TEST(!ParseInfoRequest(missing).ok());  // half an item
  auto lying = Info("abc", {});
  StoreBE<uint32_t>(lying.data(), 0xfffffff0u);  // name length beyond the data
  BOOST_TEST(!ParseInfoRequest(lying).ok());
  StoreBE<uint32_t>(lying.data(), 4);  // one past: eats the count's first byte
  BOOST_TEST(!ParseInfoRequest(lying).ok());
  const std::string big(kMaxStringLength + 1, 'n');
  BOOST_TEST(!ParseInfoRequest(Info(big, {})).ok());
  const std::string nul("a\0", 2);
  BOOST_TEST(!ParseInfoRequest(Info(nul, {})).ok());
}

BOOST_AUTO_TEST_CASE(RequestParsedBigEndian) {
  const auto b = RequestBytes(kCmdFlagFua, kCmdWrite, 0x1122334455667788ULL, 0x1000, 512);
  auto r = ParseRequest(b);
  BOOST_TEST_REQUIRE(r.ok());
  BOOST_TEST(r->flags == kCmdFlagFua);
  BOOST_TEST(r->type == kCmdWrite);
  BOOST_TEST(r->cookie == 0x1122334455667788ULL);
  BOOST_TEST(r->offset == 0x1000u);
  BOOST_TEST(r->length == 512u);
  auto bad = b;
  bad[0] = std::byte{0x21};  // the extended-header magic's first byte
  BOOST_TEST(!ParseRequest(bad).ok());
  BOOST_TEST(!ParseRequest(std::span(b.data(), 27)).ok());
}

BOOST_AUTO_TEST_CASE(RepliesSerialisedBigEndian) {
  const auto r = EncodeSimpleReply(kEinval, 7);
  BOOST_TEST(std::vector<std::byte>(r.begin(), r.end()) ==
             Bytes({0x67, 0x44, 0x66, 0x98, 0, 0, 0, 22, 0, 0, 0, 0, 0, 0, 0, 7}));
  const auto o = EncodeOptionReply(kOptGo, kRepAck);
  BOOST_TEST(o.size() == kOptionReplyHeaderSize);
  BOOST_TEST(LoadBE<uint64_t>(o.data()) == kOptionReplyMagic);
  BOOST_TEST(LoadBE<uint32_t>(o.data() + 8) == kOptGo);
  BOOST_TEST(LoadBE<uint32_t>(o.data() + 12) == kRepAck);
  BOOST_TEST(LoadBE<uint32_t>(o.data() + 16) == 0u);
  const auto e = EncodeOptionError(kOptList, kRepErrInvalid, "bad\x01");
  BOOST_TEST(LoadBE<uint32_t>(e.data() + 16) == 4u);
  BOOST_TEST(static_cast<char>(e[kOptionReplyHeaderSize + 3]) == '?');  // made printable
  const auto info = EncodeInfoExport(1 << 20, kWritable);
  BOOST_TEST(info.size() == 12u);
  BOOST_TEST(LoadBE<uint16_t>(info.data()) == kInfoExport);
  BOOST_TEST(LoadBE<uint64_t>(info.data() + 2) == (1u << 20));
  BOOST_TEST(LoadBE<uint16_t>(info.data() + 10) == kWritable);
  const auto bs = EncodeInfoBlockSize(1, 4096, 32u << 20);
  BOOST_TEST(bs.size() == 14u);
  BOOST_TEST(LoadBE<uint32_t>(bs.data() + 10) == (32u << 20));
  BOOST_TEST(EncodeExportNameReply(5, kWritable, true).size() == 10u);
  const auto zeroes = EncodeExportNameReply(5, kWritable, false);
  BOOST_TEST(zeroes.size() == 134u);
  BOOST_TEST(std::all_of(zeroes.begin() + 10, zeroes.end(),
                         [](std::byte b) { return b == std::byte{0}; }));
  const auto srv = EncodeServerEntry("vnvram");
  BOOST_TEST(LoadBE<uint32_t>(srv.data()) == 6u);
  BOOST_TEST(srv.size() == 10u);
}

BOOST_AUTO_TEST_CASE(CheckRequestServesValidCommands) {
  BOOST_TEST((CheckRequest(Req(kCmdRead, 0, 4096), kShape).verdict == Verdict::kServe));
  BOOST_TEST((CheckRequest(Req(kCmdRead, (1 << 20) - 1, 1), kShape).verdict == Verdict::kServe));
  BOOST_TEST((CheckRequest(Req(kCmdRead, 1 << 20, 0), kShape).verdict == Verdict::kServe));
  BOOST_TEST(
      (CheckRequest(Req(kCmdWrite, 0, 1 << 16, kCmdFlagFua), kShape).verdict == Verdict::kServe));
  BOOST_TEST((CheckRequest(Req(kCmdFlush, 0, 0), kShape).verdict == Verdict::kServe));
  BOOST_TEST((CheckRequest(Req(kCmdFlush, 0, 0, kCmdFlagFua), kShape).verdict == Verdict::kServe));
  BOOST_TEST((CheckRequest(Req(kCmdDisc, 0, 0), kShape).verdict == Verdict::kServe));
  BOOST_TEST((CheckRequest(Req(kCmdTrim, 0, 1 << 20), kShape).verdict == Verdict::kServe));
  // Zeroing is not bounded by the payload limit (it carries no payload).
  BOOST_TEST((CheckRequest(Req(kCmdWriteZeroes, 0, 1 << 20, kCmdFlagNoHole | kCmdFlagFua), kShape)
                  .verdict == Verdict::kServe));
}

BOOST_AUTO_TEST_CASE(CheckRequestRefusesWithTheSpecsErrors) {
  auto err = [](const Request& r, const ExportShape& s = kShape) {
    const RequestCheck c = CheckRequest(r, s);
    BOOST_TEST((c.verdict == Verdict::kError), c.why);
    BOOST_TEST(!c.why.empty());
    return c.error;
  };
  BOOST_TEST(err(Req(kCmdRead, 1 << 20, 1)) == kEinval);
  BOOST_TEST(err(Req(kCmdRead, ~uint64_t{0}, 2)) == kEinval);   // offset + length overflows
  BOOST_TEST(err(Req(kCmdRead, 0, (1 << 16) + 1)) == kEinval);  // above max payload
  BOOST_TEST(err(Req(kCmdWrite, (1 << 20) - 1, 2)) == kEnospc);
  BOOST_TEST(err(Req(kCmdWriteZeroes, 1 << 20, 1)) == kEnospc);
  BOOST_TEST(err(Req(kCmdTrim, (1 << 20) + 1, 0)) == kEinval);
  BOOST_TEST(err(Req(kCmdCache, 0, 1)) == kEinval);
  BOOST_TEST(err(Req(kCmdBlockStatus, 0, 1)) == kEinval);
  BOOST_TEST(err(Req(999, 0, 0)) == kEinval);
  BOOST_TEST(err(Req(kCmdRead, 0, 1, kCmdFlagDf)) == kEinval);  // DF never negotiated
  BOOST_TEST(err(Req(kCmdWrite, 0, 1, kCmdFlagNoHole)) == kEinval);
  BOOST_TEST(err(Req(kCmdWriteZeroes, 0, 1, kCmdFlagFastZero)) == kEinval);
  BOOST_TEST(err(Req(kCmdRead, 0, 1, 0x8000)) == kEinval);

  ExportShape ro = kShape;
  ro.transmission_flags = kFlagHasFlags | kFlagReadOnly | kFlagSendFlush | kFlagCanMultiConn;
  BOOST_TEST(err(Req(kCmdWrite, 0, 1), ro) == kEperm);
  BOOST_TEST(err(Req(kCmdTrim, 0, 1), ro) == kEinval);  // not offered read-only
  BOOST_TEST(err(Req(kCmdWriteZeroes, 0, 1), ro) == kEinval);
  BOOST_TEST(err(Req(kCmdRead, 0, 1, kCmdFlagFua), ro) == kEinval);  // FUA not offered
  BOOST_TEST((CheckRequest(Req(kCmdRead, 0, 1), ro).verdict == Verdict::kServe));
  BOOST_TEST((CheckRequest(Req(kCmdFlush, 0, 0), ro).verdict == Verdict::kServe));
}

BOOST_AUTO_TEST_CASE(OversizedWriteCannotBeSkipped) {
  const RequestCheck c = CheckRequest(Req(kCmdWrite, 0, (1 << 16) + 1), kShape);
  BOOST_TEST((c.verdict == Verdict::kDisconnect));
  BOOST_TEST(c.why.find("65537") != std::string::npos, c.why);
  BOOST_TEST(
      (CheckRequest(Req(kCmdWrite, 0, 0xffffffffu), kShape).verdict == Verdict::kDisconnect));
}

// Random bytes into every parser: no crash, and every accepted value obeys
// its bounds.
BOOST_AUTO_TEST_CASE(RandomBytesNeverBreakTheParsers) {
  std::mt19937_64 rng(20240608);
  std::vector<std::byte> buf;
  for (int i = 0; i < 200000; ++i) {
    const size_t n = rng() % 64;
    buf.resize(n);
    for (auto& b : buf) b = static_cast<std::byte>(rng());
    // Sometimes a valid prefix, to get past the magic checks.
    if (n >= 16 && (i % 3) == 0) StoreBE<uint64_t>(buf.data(), kOptionMagic);
    if (n >= 16 && (i % 3) == 1) StoreBE<uint32_t>(buf.data(), kRequestMagic);
    (void)ParseClientFlags(std::span(buf.data(), std::min<size_t>(n, 4)));
    if (n >= kOptionHeaderSize) {
      OptionHeader h;
      if (ParseOptionHeader(std::span(buf.data(), kOptionHeaderSize), &h).ok()) {
        BOOST_TEST_REQUIRE(h.length <= kMaxOptionLength);
      }
    }
    if (auto r = ParseInfoRequest(buf); r.ok()) {
      BOOST_TEST_REQUIRE(r->name.size() + 6 + 2 * r->items.size() == n);
    }
    (void)ParseExportName(buf);
    if (n >= kRequestSize) {
      if (auto r = ParseRequest(std::span(buf.data(), kRequestSize)); r.ok()) {
        const RequestCheck c = CheckRequest(*r, kShape);
        if (c.verdict == Verdict::kServe && r->type != kCmdDisc && r->type != kCmdFlush) {
          BOOST_TEST_REQUIRE(r->offset + r->length <= kShape.size);
        }
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(NamesForLogs) {
  BOOST_TEST(OptionName(kOptGo) == "NBD_OPT_GO");
  BOOST_TEST(OptionName(77) == "option 77");
  BOOST_TEST(CommandName(kCmdWriteZeroes) == "NBD_CMD_WRITE_ZEROES");
  BOOST_TEST(CommandName(40) == "command 40");
}

}  // namespace
}  // namespace vnvram::frontd::nbd
