#define BOOST_TEST_MODULE replication_message
#include "backend/replication/message.h"

#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "common/crc32c.h"
#include "common/endian.h"

namespace vnvram::replication {
namespace {

namespace fs = std::filesystem;

Uuid Vol() {
  auto u = ParseUuid("6a0c2f6e-1d2b-4c3d-9e8f-0123456789ab");
  BOOST_REQUIRE(u.ok());
  return *u;
}

Bytes Pattern(size_t n, uint8_t seed = 1) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = std::byte(static_cast<uint8_t>(seed + i * 7));
  return b;
}

// One valid message of every type, in wire type order.
std::vector<std::pair<std::string, Message>> Samples() {
  using wire::AckStatus;
  std::vector<std::pair<std::string, Message>> v;
  v.emplace_back("hello", Hello{"host-a", 0x1122334455667788ull, 65536});
  v.emplace_back("hello_ack", HelloAck{"b.example_2", 42, wire::kMaxData});
  v.emplace_back("replicate", Replicate{Vol(), 3, 1001, 8192, true, Pattern(4096)});
  v.emplace_back("ack", Ack{Vol(), 3, 1001, AckStatus::kOk});
  v.emplace_back("gap", Gap{Vol(), 3, 990, 1001});
  v.emplace_back("heartbeat", Heartbeat{7, 123456});
  v.emplace_back("epoch_propose", EpochPropose{Vol(), 4, 3, 1001, "host-b"});
  v.emplace_back("epoch_accept", EpochAccept{Vol(), 4, 3, 1000});
  v.emplace_back("epoch_reject",
                 EpochReject{Vol(), 4, 5, 3, 1001, wire::RejectReason::kStaleEpoch});
  v.emplace_back("resync_request", ResyncRequest{Vol(), 4, 900, 65536});
  v.emplace_back("resync_chunk", ResyncChunk{Vol(), 4, 1001, 4096, 17, true, Pattern(4096, 9)});
  v.emplace_back("resync_done", ResyncDone{Vol(), 4, 1001, 18});
  v.emplace_back("inspect", Inspect{Vol(), 4096, 512});
  v.emplace_back("inspect_reply", InspectReply{Vol(), 4, 1001, 4096, Pattern(512, 3)});
  v.emplace_back("invalid", Invalid{wire::InvalidReason::kNoSession, "HELLO first"});
  return v;
}

Bytes MustEncode(const Message& m, const Limits& limits = {}) {
  auto b = Encode(m, limits);
  BOOST_REQUIRE_MESSAGE(b.ok(), b.status().ToString());
  return *b;
}

Bytes ReplicateFrame() {
  return MustEncode(Replicate{Vol(), 1, 1, 0, false, Pattern(100)});
}

void ExpectRejected(const Bytes& frame, Code code, std::string_view words,
                    const Limits& limits = {}) {
  auto m = Decode(frame, limits);
  BOOST_TEST_REQUIRE(!m.ok());
  BOOST_TEST(static_cast<int>(m.status().code()) == static_cast<int>(code), m.status().ToString());
  BOOST_TEST(m.status().message().find(words) != std::string::npos, m.status().ToString());
  BOOST_TEST(m.status().message().find('\n') == std::string::npos);
}

BOOST_AUTO_TEST_SUITE(MessageTest)

BOOST_AUTO_TEST_CASE(EveryTypeRoundTrips) {
  const auto samples = Samples();
  BOOST_TEST(samples.size() == size_t{wire::kLastType});
  for (size_t i = 0; i < samples.size(); ++i) {
    const auto& [name, m] = samples[i];
    BOOST_TEST_CONTEXT(name) {
      BOOST_TEST(static_cast<size_t>(TypeOf(m)) == i + 1);
      const Bytes b = MustEncode(m);
      BOOST_TEST(static_cast<uint8_t>(b[wire::kTypeOffset]) == i + 1);
      BOOST_TEST(LoadLE<uint32_t>(b.data() + wire::kBodyLengthOffset) ==
                 b.size() - wire::kHeaderSize);
      auto d = Decode(b);
      BOOST_TEST_REQUIRE(d.ok(), d.status().ToString());
      BOOST_TEST((*d == m));
      auto h = DecodeHeader(b);
      BOOST_TEST_REQUIRE(h.ok());
      BOOST_TEST(static_cast<int>(h->type) == static_cast<int>(TypeOf(m)));
    }
  }
}

// The multipath takeover (docs/replication.md, "Activation"): the flag on
// EPOCH_PROPOSE and the primary-alive refusal survive the wire.
BOOST_AUTO_TEST_CASE(TakeoverFlagAndPrimaryAliveRoundTrip) {
  EpochPropose p{Vol(), 9, 8, 77, "host-c"};
  p.takeover = true;
  const Bytes b = MustEncode(p);
  BOOST_TEST(LoadLE<uint16_t>(b.data() + wire::kFlagsOffset) == wire::kFlagTakeover);
  auto d = Decode(b);
  BOOST_TEST_REQUIRE(d.ok(), d.status().ToString());
  BOOST_TEST_REQUIRE(std::holds_alternative<EpochPropose>(*d));
  BOOST_TEST(std::get<EpochPropose>(*d).takeover);
  BOOST_TEST((*d == Message(p)));
  // Without the flag: a planned switch.
  p.takeover = false;
  const Bytes plain = MustEncode(p);
  BOOST_TEST(LoadLE<uint16_t>(plain.data() + wire::kFlagsOffset) == 0);
  auto dp = Decode(plain);
  BOOST_TEST_REQUIRE(dp.ok());
  BOOST_TEST(!std::get<EpochPropose>(*dp).takeover);

  const EpochReject r{Vol(), 9, 9, 8, 77, wire::RejectReason::kPrimaryAlive};
  auto dr = Decode(MustEncode(r));
  BOOST_TEST_REQUIRE(dr.ok(), dr.status().ToString());
  BOOST_TEST((*dr == Message(r)));
  BOOST_TEST(static_cast<int>(std::get<EpochReject>(*dr).reason) == 4);
  // The takeover bit means nothing on other types.
  Bytes accept = MustEncode(EpochAccept{Vol(), 9, 8, 77});
  StoreLE<uint16_t>(accept.data() + wire::kFlagsOffset, wire::kFlagTakeover);
  ExpectRejected(accept, Code::kInvalidArgument, "undefined flags");
}

// The persist path encodes REPLICATE from the copy without building a
// Replicate first: byte for byte what Encode writes, under the same rules.
BOOST_AUTO_TEST_CASE(EncodeReplicateMatchesEncode) {
  const Limits limits{8192};
  for (const bool ack : {false, true}) {
    for (const size_t n : {size_t{1}, size_t{100}, size_t{8192}}) {
      const Replicate m{Vol(), 3, 1001, 12288, ack, Pattern(n, 5)};
      auto direct =
          EncodeReplicate(m.volume, m.epoch, m.sequence, m.offset, m.ack_requested, m.data, limits);
      BOOST_TEST_REQUIRE(direct.ok(), direct.status().ToString());
      BOOST_TEST((*direct == MustEncode(m, limits)), "size " << n << " ack " << ack);
    }
  }
  const Bytes data = Pattern(16);
  BOOST_TEST(
      (EncodeReplicate(Vol(), 0, 1, 0, false, data).status().code() == Code::kInvalidArgument));
  BOOST_TEST(
      (EncodeReplicate(Vol(), 1, 0, 0, false, data).status().code() == Code::kInvalidArgument));
  BOOST_TEST(
      (EncodeReplicate(Vol(), 1, 1, 0, false, {}).status().code() == Code::kInvalidArgument));
  BOOST_TEST((EncodeReplicate(Vol(), 1, 1, UINT64_MAX - 4, false, data).status().code() ==
              Code::kInvalidArgument));
  BOOST_TEST((EncodeReplicate(Vol(), 1, 1, 0, false, Pattern(8193), limits).status().code() ==
              Code::kResourceExhausted));
}

BOOST_AUTO_TEST_CASE(HeaderLayoutIsLittleEndianAndFixed) {
  const Bytes b = MustEncode(Replicate{Vol(), 0x0102, 0x0304, 0x0506, true, Pattern(10)});
  BOOST_TEST(b.size() == wire::kHeaderSize + wire::kReplicateFixed + 10);
  BOOST_TEST(std::memcmp(b.data(), "VNRP", 4) == 0);
  BOOST_TEST(static_cast<int>(b[4]) == wire::kVersion);
  BOOST_TEST(static_cast<int>(b[5]) == 3);
  BOOST_TEST(static_cast<int>(b[6]) == 1);  // ack requested, low byte first
  BOOST_TEST(static_cast<int>(b[7]) == 0);
  BOOST_TEST(static_cast<int>(b[8]) == static_cast<int>(wire::kReplicateFixed + 10));
  BOOST_TEST(LoadLE<uint32_t>(b.data() + 12) == 0u);
  // Body: uuid, then epoch low byte first.
  BOOST_TEST(static_cast<int>(b[16]) == 0x6a);
  BOOST_TEST(static_cast<int>(b[32]) == 0x02);
  BOOST_TEST(static_cast<int>(b[33]) == 0x01);
  const Bytes data = Pattern(10);
  BOOST_TEST(LoadLE<uint32_t>(b.data() + 16 + 44) == Crc32c(data));
}

BOOST_AUTO_TEST_CASE(ShortHeaderIsRejected) {
  Bytes b = ReplicateFrame();
  b.resize(wire::kHeaderSize - 1);
  ExpectRejected(b, Code::kInvalidArgument, "shorter than the 16-byte header");
  ExpectRejected({}, Code::kInvalidArgument, "shorter than the 16-byte header");
}

BOOST_AUTO_TEST_CASE(BadSignatureIsRejected) {
  Bytes b = ReplicateFrame();
  b[0] = std::byte{'X'};
  ExpectRejected(b, Code::kInvalidArgument, "bad signature");
}

BOOST_AUTO_TEST_CASE(OtherVersionIsRejectedAsNotSupported) {
  Bytes b = ReplicateFrame();
  b[wire::kVersionOffset] = std::byte{2};
  ExpectRejected(b, Code::kNotSupported, "version 2");
}

BOOST_AUTO_TEST_CASE(UnknownTypeIsRejected) {
  Bytes b = ReplicateFrame();
  for (int t : {0, 16, 255}) {
    b[wire::kTypeOffset] = std::byte(t);
    ExpectRejected(b, Code::kInvalidArgument, "unknown type " + std::to_string(t));
  }
}

BOOST_AUTO_TEST_CASE(UndefinedFlagsAndReservedBitsAreRejected) {
  Bytes b = ReplicateFrame();
  b[wire::kFlagsOffset] = std::byte{0x02};
  ExpectRejected(b, Code::kInvalidArgument, "undefined flags");
  Bytes ack = MustEncode(Ack{Vol(), 1, 1, wire::AckStatus::kOk});
  ack[wire::kFlagsOffset] = std::byte{0x01};  // ACK defines no flags
  ExpectRejected(ack, Code::kInvalidArgument, "undefined flags");
  Bytes r = ReplicateFrame();
  r[wire::kReservedOffset + 3] = std::byte{1};
  ExpectRejected(r, Code::kInvalidArgument, "reserved");
}

BOOST_AUTO_TEST_CASE(BodyLengthMismatchIsRejected) {
  Bytes b = ReplicateFrame();
  StoreLE<uint32_t>(b.data() + wire::kBodyLengthOffset,
                    static_cast<uint32_t>(b.size() - wire::kHeaderSize + 1));
  ExpectRejected(b, Code::kInvalidArgument, "but the frame carries");
  Bytes t = ReplicateFrame();
  t.pop_back();
  ExpectRejected(t, Code::kInvalidArgument, "but the frame carries");
}

BOOST_AUTO_TEST_CASE(DataLengthFieldRunningPastTheBodyIsRejected) {
  Bytes b = ReplicateFrame();
  // The data length field (body offset 40) claims one byte more than sent.
  StoreLE<uint32_t>(b.data() + wire::kHeaderSize + 40, 101);
  ExpectRejected(b, Code::kInvalidArgument, "runs past the body");
}

BOOST_AUTO_TEST_CASE(TrailingBytesAreRejected) {
  Bytes b = MustEncode(Ack{Vol(), 1, 1, wire::AckStatus::kOk});
  b.push_back(std::byte{0});
  StoreLE<uint32_t>(b.data() + wire::kBodyLengthOffset,
                    static_cast<uint32_t>(b.size() - wire::kHeaderSize));
  ExpectRejected(b, Code::kResourceExhausted, "exceeds the maximum");  // fixed-size body
  Bytes r = ReplicateFrame();
  StoreLE<uint32_t>(r.data() + wire::kHeaderSize + 40, 99);  // data length one short
  ExpectRejected(r, Code::kInvalidArgument, "1 trailing bytes");
}

BOOST_AUTO_TEST_CASE(OversizeBodyIsRejectedFromTheHeaderAlone) {
  // Only the header: the decision is made before the body is looked at.
  Bytes b = ReplicateFrame();
  b.resize(wire::kHeaderSize);
  StoreLE<uint32_t>(b.data() + wire::kBodyLengthOffset, 0xFFFFFFFFu);
  ExpectRejected(b, Code::kResourceExhausted, "exceeds the maximum");
  auto h = DecodeHeader(b);
  BOOST_TEST(!h.ok());
}

BOOST_AUTO_TEST_CASE(DataAboveTheConfiguredMaximumIsRejected) {
  const Bytes b = MustEncode(Replicate{Vol(), 1, 1, 0, false, Pattern(8192)});
  ExpectRejected(b, Code::kResourceExhausted, "exceeds the maximum", Limits{.max_data = 4096});
  BOOST_TEST(Decode(b, Limits{.max_data = 8192}).ok());
  auto e = Encode(Replicate{Vol(), 1, 1, 0, false, Pattern(8192)}, Limits{.max_data = 4096});
  BOOST_TEST((e.status().code() == Code::kResourceExhausted));
  BOOST_TEST(!Decode(b, Limits{.max_data = 100}).ok());  // limit itself below the minimum
}

BOOST_AUTO_TEST_CASE(BadCrcOnReplicateDataIsCorruption) {
  Bytes b = ReplicateFrame();
  b.back() ^= std::byte{0x01};
  ExpectRejected(b, Code::kCorruption, "crc32c");
  Bytes c = ReplicateFrame();
  c[wire::kHeaderSize + 44] ^= std::byte{0x80};  // the crc field itself
  ExpectRejected(c, Code::kCorruption, "crc32c");
}

BOOST_AUTO_TEST_CASE(BadCrcOnResyncChunkAndInspectReplyIsCorruption) {
  Bytes b = MustEncode(ResyncChunk{Vol(), 1, 5, 4096, 0, false, Pattern(4096)});
  b[wire::kHeaderSize + wire::kResyncChunkFixed + 100] ^= std::byte{0x10};
  ExpectRejected(b, Code::kCorruption, "crc32c");
  Bytes r = MustEncode(InspectReply{Vol(), 1, 5, 0, Pattern(16)});
  r.back() ^= std::byte{0x10};
  ExpectRejected(r, Code::kCorruption, "crc32c");
}

BOOST_AUTO_TEST_CASE(SemanticRulesAreEnforcedBothWays) {
  struct Case {
    const char* name;
    Message m;
    const char* words;
  };
  const std::vector<Case> cases = {
      {"empty host id", Hello{"", 1, 4096}, "host_id"},
      {"host id with a slash", Hello{"a/b", 1, 4096}, "host_id"},
      {"host id starting with a dot", HelloAck{".a", 1, 4096}, "host_id"},
      {"max_data too small", Hello{"a", 1, 100}, "max_data"},
      {"epoch 0", Replicate{Vol(), 0, 1, 0, false, Pattern(1)}, "epoch 0"},
      {"sequence 0", Replicate{Vol(), 1, 0, 0, false, Pattern(1)}, "sequence 0"},
      {"empty data", Replicate{Vol(), 1, 1, 0, false, {}}, "empty data"},
      {"wrapping range", Replicate{Vol(), 1, 1, ~0ull, false, Pattern(2)}, "wraps"},
      {"unknown ack status", Ack{Vol(), 1, 1, static_cast<wire::AckStatus>(99)}, "status 99"},
      {"gap not a gap", Gap{Vol(), 1, 5, 5}, "received_sequence"},
      {"propose epoch 0", EpochPropose{Vol(), 0, 0, 0, "a"}, "proposed_epoch 0"},
      {"propose not ahead", EpochPropose{Vol(), 3, 3, 0, "a"}, "last_epoch"},
      {"reject reason 0", EpochReject{Vol(), 1, 1, 0, 0, static_cast<wire::RejectReason>(0)},
       "reason 0"},
      {"chunk size not a power of two", ResyncRequest{Vol(), 1, 0, 5000}, "chunk_size"},
      {"chunk larger than chunk size", ResyncChunk{Vol(), 1, 1, 4096, 0, false, Pattern(4097)},
       "exceeds chunk_size"},
      {"inspect nothing", Inspect{Vol(), 0, 0}, "empty data"},
      {"invalid text with newline", Invalid{wire::InvalidReason::kMalformed, "a\nb"}, "text"},
      {"invalid reason 0", Invalid{static_cast<wire::InvalidReason>(0), ""}, "reason 0"},
  };
  for (const auto& c : cases) {
    BOOST_TEST_CONTEXT(c.name) {
      auto e = Encode(c.m);
      BOOST_TEST_REQUIRE(!e.ok());
      BOOST_TEST(e.status().message().find(c.words) != std::string::npos, e.status().ToString());
    }
  }
  // The same rules on the decode side: a valid HELLO whose host id byte is
  // changed to '/' after encoding.
  Bytes b = MustEncode(Hello{"ab", 1, 4096});
  b[wire::kHeaderSize + 2] = std::byte{'/'};
  ExpectRejected(b, Code::kInvalidArgument, "host_id");
}

BOOST_AUTO_TEST_CASE(HostIdLengthByteIsBoundedBeforeUse) {
  Bytes b = MustEncode(Hello{"ab", 1, 4096});
  b[wire::kHeaderSize] = std::byte{200};  // claims 200 bytes of host id
  ExpectRejected(b, Code::kInvalidArgument, "host id length 200");
}

BOOST_AUTO_TEST_CASE(LargestFrameFitsTheProtocolMaximum) {
  const Bytes b = MustEncode(Replicate{Vol(), 1, 1, 0, false, Pattern(wire::kMaxData)});
  BOOST_TEST(b.size() <= wire::kMaxFrameSize);
  BOOST_TEST(Decode(b).ok());
  BOOST_TEST(!Encode(Replicate{Vol(), 1, 1, 0, false, Pattern(wire::kMaxData + 1)}).ok());
}

BOOST_AUTO_TEST_CASE(TypeNamesCoverTheTable) {
  BOOST_TEST(TypeName(3) == "REPLICATE");
  BOOST_TEST(TypeName(15) == "INVALID");
  BOOST_TEST(TypeName(0) == "UNKNOWN");
  BOOST_TEST(TypeName(16) == "UNKNOWN");
}

// Writes the fuzz seed corpus when VNVRAM_WRITE_REPLICATION_CORPUS names a
// directory (how backend/fuzz/corpus/replication_message was made); a
// no-op otherwise.
BOOST_AUTO_TEST_CASE(SeedCorpusGenerator) {
  const char* dir = std::getenv("VNVRAM_WRITE_REPLICATION_CORPUS");
  if (dir == nullptr) return;
  auto write = [&](const std::string& name, const Bytes& b) {
    std::ofstream out(fs::path(dir) / name, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  };
  for (const auto& [name, m] : Samples()) {
    write("valid_" + name, MustEncode(m));
  }
  Bytes r = ReplicateFrame();
  write("valid_replicate_small", r);
  Bytes bad = r;
  bad.back() ^= std::byte{1};
  write("bad_crc_replicate", bad);
  bad = r;
  StoreLE<uint32_t>(bad.data() + wire::kBodyLengthOffset, 0xFFFFFFF0u);
  write("oversize_body_length", bad);
  bad = r;
  StoreLE<uint32_t>(bad.data() + wire::kHeaderSize + 40, 0x7FFFFFFFu);
  write("huge_data_length", bad);
  bad = r;
  bad.push_back(std::byte{0});
  write("trailing_byte", bad);
  bad = r;
  bad[wire::kVersionOffset] = std::byte{9};
  write("bad_version", bad);
  bad = r;
  bad.resize(10);
  write("short_header", bad);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace vnvram::replication
