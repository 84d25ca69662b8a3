// NbdSession and NbdServer over real sockets with an in-memory export: the
// negotiation (GO, INFO, EXPORT_NAME, LIST, ABORT, unknown options), every
// command and its errors, FUA and FLUSH against the export's durable copy,
// and hostile clients (bad magic, bad lengths, truncated and stalled frames,
// random byte streams): each ends its own session only. Waits are on the
// session's end (thread join) and on socket reads with timeouts, never on
// sleeps.
#define BOOST_TEST_MODULE frontd_session
#include "frontd/nbd_session.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <functional>
#include <random>
#include <thread>

#include "common/endian.h"
#include "frontd/listen_socket.h"
#include "frontd/nbd_server.h"
#include "frontd/testing/memory_export.h"
#include "frontd/testing/nbd_test_client.h"

// Byte vectors are compared whole; their elements need no printing.
BOOST_TEST_DONT_PRINT_LOG_VALUE(std::byte)

namespace vnvram {
inline std::ostream& operator<<(std::ostream& o, Code c) {
  return o << CodeName(c);
}
}  // namespace vnvram

namespace vnvram::frontd {
namespace {

using namespace nbd;  // NOLINT(google-build-using-namespace)
using std::chrono::milliseconds;
using testing::MemoryExport;
using testing::NbdTestClient;

constexpr uint64_t kSize = 1 << 20;

std::vector<std::byte> Pattern(size_t n, uint8_t seed) {
  std::vector<std::byte> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>((i * 31 + seed) & 0xff);
  return v;
}

std::span<const std::byte> Span(const std::string& s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

// One session on a thread over a socketpair; the test holds the client end.
class Harness {
 public:
  explicit Harness(uint64_t size = kSize, bool read_only = false,
                   const std::function<void(SessionConfig&)>& tweak = {})
      : export_(size, read_only), stop_(::eventfd(0, EFD_CLOEXEC)) {
    config_.export_name = "vnvram";
    config_.description = "test volume";
    config_.max_payload = 1 << 16;
    config_.chunk = 4096;  // several chunks per payload
    config_.frame_timeout = std::chrono::seconds(10);
    if (tweak) tweak(config_);
    int sv[2];
    BOOST_TEST_REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    BOOST_TEST_REQUIRE(::fcntl(sv[0], F_SETFL, O_NONBLOCK) == 0);
    thread_ = std::thread([this, fd = sv[0]] {
      ClientSocket socket(fd, stop_.get(), config_.stop_grace);
      NbdSession session(socket, export_, config_, log::Context("test session"));
      result_ = session.Run();
      stats_ = session.stats();
    });
    client_ = std::make_unique<NbdTestClient>(sv[1]);
  }
  ~Harness() {
    if (thread_.joinable()) {
      Stop();
      client_.reset();
      thread_.join();
    }
  }

  NbdTestClient& client() { return *client_; }
  MemoryExport& exp() { return export_; }
  // Waits for the session to end; its result.
  Status Finish() {
    if (thread_.joinable()) thread_.join();
    return result_;
  }
  const SessionStats& stats() const { return stats_; }
  void Stop() {
    const uint64_t one = 1;
    BOOST_TEST(::write(stop_.get(), &one, sizeof one) == 8);
  }
  // Negotiates GO "vnvram"; the flags.
  uint16_t Go() {
    uint64_t size = 0;
    uint16_t flags = 0;
    BOOST_TEST_REQUIRE(client_->Go("vnvram", &size, &flags));
    BOOST_TEST(size == export_.size());
    return flags;
  }

 private:
  MemoryExport export_;
  SessionConfig config_;
  UniqueFd stop_;
  std::thread thread_;
  std::unique_ptr<NbdTestClient> client_;
  Status result_;
  SessionStats stats_;
};

// Greeting and fixed-newstyle flags, then one option; its replies until the
// final one.
std::vector<NbdTestClient::OptionReply> Option(NbdTestClient& c, uint32_t option,
                                               std::span<const std::byte> data,
                                               bool handshake = true) {
  if (handshake) {
    uint16_t hs = 0;
    BOOST_TEST_REQUIRE(c.ReadGreeting(&hs));
    BOOST_TEST(hs == (kFlagFixedNewstyle | kFlagNoZeroes));
    BOOST_TEST_REQUIRE(c.SendClientFlags(kClientFlagFixedNewstyle | kClientFlagNoZeroes));
  }
  BOOST_TEST_REQUIRE(c.SendOption(option, data));
  std::vector<NbdTestClient::OptionReply> out;
  for (;;) {
    NbdTestClient::OptionReply r;
    BOOST_TEST_REQUIRE(c.ReadOptionReply(&r));
    BOOST_TEST(r.option == option);
    out.push_back(r);
    if (r.type != kRepInfo && r.type != kRepServer) return out;
  }
}

// ---- Negotiation ----------------------------------------------------------

BOOST_AUTO_TEST_CASE(GoReportsSizeFlagsNameDescriptionAndBlockSizes) {
  Harness h;
  auto replies = Option(h.client(), kOptGo,
                        NbdTestClient::InfoData("vnvram", {kInfoBlockSize, kInfoName,
                                                           kInfoDescription, 99, kInfoName}));
  BOOST_TEST_REQUIRE(replies.size() == 5u);  // export, block size, name, description, ack
  BOOST_TEST(replies[0].type == kRepInfo);
  const auto& ex = replies[0].data;
  BOOST_TEST_REQUIRE(ex.size() == 12u);
  BOOST_TEST(LoadBE<uint16_t>(ex.data()) == kInfoExport);
  BOOST_TEST(LoadBE<uint64_t>(ex.data() + 2) == kSize);
  const uint16_t flags = LoadBE<uint16_t>(ex.data() + 10);
  BOOST_TEST(flags == (kFlagHasFlags | kFlagSendFlush | kFlagSendFua | kFlagSendTrim |
                       kFlagSendWriteZeroes | kFlagCanMultiConn));
  const auto& bs = replies[1].data;
  BOOST_TEST_REQUIRE(bs.size() == 14u);
  BOOST_TEST(LoadBE<uint16_t>(bs.data()) == kInfoBlockSize);
  BOOST_TEST(LoadBE<uint32_t>(bs.data() + 2) == 1u);
  BOOST_TEST(LoadBE<uint32_t>(bs.data() + 6) == 4096u);
  BOOST_TEST(LoadBE<uint32_t>(bs.data() + 10) == (1u << 16));
  BOOST_TEST(LoadBE<uint16_t>(replies[2].data.data()) == kInfoName);
  BOOST_TEST(std::string(reinterpret_cast<const char*>(replies[2].data.data()) + 2,
                         replies[2].data.size() - 2) == "vnvram");
  BOOST_TEST(LoadBE<uint16_t>(replies[3].data.data()) == kInfoDescription);
  BOOST_TEST(replies[4].type == kRepAck);
  // Transmission works.
  const auto data = Pattern(100, 1);
  BOOST_TEST(h.client().Write(10, data) == 0);
  std::vector<std::byte> back(100);
  BOOST_TEST(h.client().Read(10, back) == 0);
  BOOST_TEST(back == data);
  BOOST_TEST(h.client().Disconnect());
  BOOST_TEST(h.Finish().ok());
}

BOOST_AUTO_TEST_CASE(InfoThenGoWithTheEmptyDefaultName) {
  Harness h;
  auto info = Option(h.client(), kOptInfo, NbdTestClient::InfoData("", {}));
  BOOST_TEST_REQUIRE(info.size() == 2u);
  BOOST_TEST(info.back().type == kRepAck);
  auto go = Option(h.client(), kOptGo, NbdTestClient::InfoData("", {}), false);
  BOOST_TEST(go.back().type == kRepAck);
  BOOST_TEST(h.client().Flush() == 0);
  BOOST_TEST(h.client().Disconnect());
  BOOST_TEST(h.Finish().ok());
}

BOOST_AUTO_TEST_CASE(UnknownExportIsAnErrorReplyAndNegotiationGoesOn) {
  Harness h;
  auto r = Option(h.client(), kOptGo, NbdTestClient::InfoData("other", {}));
  BOOST_TEST_REQUIRE(r.size() == 1u);
  BOOST_TEST(r[0].type == kRepErrUnknown);
  const std::string msg(reinterpret_cast<const char*>(r[0].data.data()), r[0].data.size());
  BOOST_TEST(msg.find("other") != std::string::npos, msg);
  auto ok = Option(h.client(), kOptGo, NbdTestClient::InfoData("vnvram", {}), false);
  BOOST_TEST(ok.back().type == kRepAck);
  BOOST_TEST(h.client().Disconnect());
  BOOST_TEST(h.Finish().ok());
}

BOOST_AUTO_TEST_CASE(ListNamesTheExport) {
  Harness h;
  auto r = Option(h.client(), kOptList, {});
  BOOST_TEST_REQUIRE(r.size() == 2u);
  BOOST_TEST(r[0].type == kRepServer);
  BOOST_TEST(LoadBE<uint32_t>(r[0].data.data()) == 6u);
  BOOST_TEST(r[1].type == kRepAck);
  auto bad = Option(h.client(), kOptList, Span("x"), false);
  BOOST_TEST(bad[0].type == kRepErrInvalid);
  auto abort = Option(h.client(), kOptAbort, {}, false);
  BOOST_TEST(abort[0].type == kRepAck);
  BOOST_TEST(h.Finish().ok());
  BOOST_TEST(h.client().ClosedByServer());
}

BOOST_AUTO_TEST_CASE(UnsupportedOptionsGetErrUnsup) {
  Harness h;
  auto r = Option(h.client(), kOptStartTls, {});
  BOOST_TEST(r[0].type == kRepErrUnsup);
  for (uint32_t opt : {kOptStructuredReply, 9u, 10u, 11u, 4u, 0u, 0xffffffffu}) {
    auto u = Option(h.client(), opt, Span("some data"), false);
    BOOST_TEST(u[0].type == kRepErrUnsup, "option " << opt);
  }
  auto ok = Option(h.client(), kOptGo, NbdTestClient::InfoData("vnvram", {}), false);
  BOOST_TEST(ok.back().type == kRepAck);
  BOOST_TEST(h.client().Disconnect());
  BOOST_TEST(h.Finish().ok());
}

BOOST_AUTO_TEST_CASE(BadInfoRequestsGetErrInvalid) {
  Harness h;
  auto r = Option(h.client(), kOptGo, Span("abc"));
  BOOST_TEST(r[0].type == kRepErrInvalid);
  auto data = NbdTestClient::InfoData("vnvram", {kInfoName});
  StoreBE<uint16_t>(data.data() + 4 + 6, 7);  // claims 7 items, carries 1
  BOOST_TEST(Option(h.client(), kOptInfo, data, false)[0].type == kRepErrInvalid);
  const std::string big(kMaxStringLength + 1, 'n');
  BOOST_TEST(Option(h.client(), kOptGo, NbdTestClient::InfoData(big, {}), false)[0].type ==
             kRepErrInvalid);
  BOOST_TEST(Option(h.client(), kOptAbort, {}, false)[0].type == kRepAck);
  BOOST_TEST(h.Finish().ok());
}

BOOST_AUTO_TEST_CASE(ExportNameWithAndWithoutZeroes) {
  for (const bool no_zeroes : {true, false}) {
    Harness h;
    uint16_t hs = 0;
    BOOST_TEST_REQUIRE(h.client().ReadGreeting(&hs));
    BOOST_TEST_REQUIRE(h.client().SendClientFlags(kClientFlagFixedNewstyle |
                                                  (no_zeroes ? kClientFlagNoZeroes : 0)));
    BOOST_TEST_REQUIRE(h.client().SendOption(kOptExportName, Span("vnvram")));
    std::vector<std::byte> reply(no_zeroes ? 10 : 134);
    BOOST_TEST_REQUIRE(h.client().Recv(reply));
    BOOST_TEST(LoadBE<uint64_t>(reply.data()) == kSize);
    BOOST_TEST((LoadBE<uint16_t>(reply.data() + 8) & kFlagSendFlush) != 0);
    BOOST_TEST(h.client().Flush() == 0);
    BOOST_TEST(h.client().Disconnect());
    BOOST_TEST(h.Finish().ok());
  }
}

BOOST_AUTO_TEST_CASE(NonFixedClientMayOnlySendExportName) {
  {
    Harness h;
    uint16_t hs = 0;
    BOOST_TEST_REQUIRE(h.client().ReadGreeting(&hs));
    BOOST_TEST_REQUIRE(h.client().SendClientFlags(0));
    BOOST_TEST_REQUIRE(h.client().SendOption(kOptExportName, {}));  // default export
    std::vector<std::byte> reply(134);
    BOOST_TEST_REQUIRE(h.client().Recv(reply));
    BOOST_TEST(h.client().Disconnect());
    BOOST_TEST(h.Finish().ok());
  }
  {
    Harness h;
    uint16_t hs = 0;
    BOOST_TEST_REQUIRE(h.client().ReadGreeting(&hs));
    BOOST_TEST_REQUIRE(h.client().SendClientFlags(0));
    BOOST_TEST_REQUIRE(h.client().SendOption(kOptGo, NbdTestClient::InfoData("vnvram", {})));
    const Status s = h.Finish();
    BOOST_TEST(s.code() == Code::kInvalidArgument, s.ToString());
    BOOST_TEST(h.client().ClosedByServer());
  }
}

// Hostile negotiation: each case ends with the session closed and an error
// naming the problem.
BOOST_AUTO_TEST_CASE(HostileNegotiationIsDisconnected) {
  struct Case {
    std::string name;
    std::function<void(NbdTestClient&)> act;
    Code code;
  };
  const std::vector<Case> cases = {
      {"unknown client flags", [](NbdTestClient& c) { c.SendClientFlags(0x80); },
       Code::kInvalidArgument},
      {"bad option magic",
       [](NbdTestClient& c) {
         c.SendClientFlags(1);
         c.SendOption(kOptGo, {}, 0x1122334455667788ULL);
       },
       Code::kInvalidArgument},
      {"option length beyond the bound",
       [](NbdTestClient& c) {
         c.SendClientFlags(1);
         std::byte h[16];
         StoreBE<uint64_t>(h, kOptionMagic);
         StoreBE<uint32_t>(h + 8, kOptGo);
         StoreBE<uint32_t>(h + 12, 0xfffffff0u);
         c.Send(h);
       },
       Code::kResourceExhausted},
      {"unknown export by EXPORT_NAME",
       [](NbdTestClient& c) {
         c.SendClientFlags(1);
         c.SendOption(kOptExportName, Span("nope"));
       },
       Code::kNotFound},
      {"option data cut short",
       [](NbdTestClient& c) {
         c.SendClientFlags(1);
         std::byte h[16 + 3];
         StoreBE<uint64_t>(h, kOptionMagic);
         StoreBE<uint32_t>(h + 8, kOptGo);
         StoreBE<uint32_t>(h + 12, 100);
         c.Send(h);
         c.ShutdownWrite();
       },
       Code::kUnavailable},
      {"client flags cut short",
       [](NbdTestClient& c) {
         std::byte two[2]{};
         c.Send(two);
         c.ShutdownWrite();
       },
       Code::kUnavailable},
  };
  for (const Case& k : cases) {
    BOOST_TEST_CONTEXT(k.name) {
      Harness h;
      uint16_t hs = 0;
      BOOST_TEST_REQUIRE(h.client().ReadGreeting(&hs));
      k.act(h.client());
      const Status s = h.Finish();
      BOOST_TEST(s.code() == k.code, s.ToString());
      BOOST_TEST(h.client().ClosedByServer());
    }
  }
}

BOOST_AUTO_TEST_CASE(TooManyOptionsIsDisconnected) {
  Harness h(kSize, false, [](SessionConfig& c) { c.max_options = 8; });
  Option(h.client(), kOptList, {});
  for (int i = 1; i < 8; ++i) Option(h.client(), kOptList, {}, false);
  BOOST_TEST_REQUIRE(h.client().SendOption(kOptList, {}));
  BOOST_TEST(h.Finish().code() == Code::kResourceExhausted);
  BOOST_TEST(h.client().ClosedByServer());
}

// ---- Transmission ---------------------------------------------------------

BOOST_AUTO_TEST_CASE(WritesAreDurableOnlyAfterFuaOrFlush) {
  Harness h;
  h.Go();
  auto& c = h.client();
  const auto a = Pattern(10000, 3);  // several 4 KiB chunks
  BOOST_TEST(c.Write(5000, a) == 0);
  auto visible = h.exp().visible();
  BOOST_TEST(std::equal(a.begin(), a.end(), visible.begin() + 5000));
  auto durable = h.exp().durable();
  BOOST_TEST(std::all_of(durable.begin() + 5000, durable.begin() + 15000,
                         [](std::byte b) { return b == std::byte{0}; }));
  BOOST_TEST(c.Flush() == 0);
  durable = h.exp().durable();
  BOOST_TEST(std::equal(a.begin(), a.end(), durable.begin() + 5000));

  const auto b = Pattern(3000, 9);
  BOOST_TEST(c.Write(100000, b, /*fua=*/true) == 0);
  durable = h.exp().durable();
  BOOST_TEST(std::equal(b.begin(), b.end(), durable.begin() + 100000));
  BOOST_TEST(h.exp().persists() == 1);
  BOOST_TEST(h.exp().flushes() == 1);
  BOOST_TEST(c.Disconnect());
  BOOST_TEST(h.Finish().ok());
  BOOST_TEST(h.stats().bytes_written == 13000u);
}

BOOST_AUTO_TEST_CASE(TrimAndWriteZeroesZeroTheRange) {
  Harness h;
  h.Go();
  auto& c = h.client();
  BOOST_TEST(c.Write(0, Pattern(1 << 16, 5)) == 0);
  BOOST_TEST(c.Write(1 << 16, Pattern(1 << 16, 6)) == 0);
  BOOST_TEST(c.Command(kCmdWriteZeroes, kCmdFlagNoHole, 100, 1000) == 0);
  BOOST_TEST(c.Command(kCmdTrim, kCmdFlagFua, 1 << 16, 1 << 16) == 0);
  // Zeroing is not limited by the payload size.
  BOOST_TEST(c.Command(kCmdWriteZeroes, 0, 1 << 17, (1 << 18)) == 0);
  const auto v = h.exp().visible();
  BOOST_TEST(v[99] != std::byte{0});
  BOOST_TEST(std::all_of(v.begin() + 100, v.begin() + 1100,
                         [](std::byte x) { return x == std::byte{0}; }));
  BOOST_TEST(v[1100] != std::byte{0});
  BOOST_TEST(std::all_of(v.begin() + (1 << 16), v.begin() + (1 << 17),
                         [](std::byte x) { return x == std::byte{0}; }));
  BOOST_TEST(h.exp().persists() == 1);  // the FUA trim
  BOOST_TEST(c.Disconnect());
  BOOST_TEST(h.Finish().ok());
}

BOOST_AUTO_TEST_CASE(BadRequestsGetErrorsAndTheSessionGoesOn) {
  Harness h;
  h.Go();
  auto& c = h.client();
  std::vector<std::byte> buf(16);
  BOOST_TEST(c.Read(kSize - 8, buf) == kEinval);
  BOOST_TEST(c.Write(kSize - 8, Pattern(16, 1)) == kEnospc);  // payload consumed
  BOOST_TEST(c.Command(kCmdWriteZeroes, 0, kSize, 1) == kEnospc);
  BOOST_TEST(c.Command(kCmdTrim, 0, ~uint64_t{0}, 2) == kEinval);
  BOOST_TEST(c.Command(kCmdCache, 0, 0, 1) == kEinval);
  BOOST_TEST(c.Command(kCmdBlockStatus, 0, 0, 1) == kEinval);
  BOOST_TEST(c.Command(1234, 0, 0, 0) == kEinval);
  BOOST_TEST(c.Command(kCmdRead, kCmdFlagDf, 0, 1) == kEinval);
  BOOST_TEST(c.Command(kCmdRead, 0, 0, (1 << 16) + 1) == kEinval);
  std::vector<std::byte> none;
  BOOST_TEST(c.Read(0, none) == 0);  // zero length: nothing to do
  // Export failures become EIO, ENOSPC, EPERM.
  h.exp().FailNext(1, Code::kIoError);
  BOOST_TEST(c.Flush() == kEio);
  h.exp().FailNext(1, Code::kUnavailable);
  BOOST_TEST(c.Read(0, buf) == kEio);
  h.exp().FailNext(1, Code::kResourceExhausted);
  BOOST_TEST(c.Write(0, Pattern(16, 2)) == kEnospc);
  // Still in step: a good round trip.
  const auto d = Pattern(16, 7);
  BOOST_TEST(c.Write(64, d) == 0);
  BOOST_TEST(c.Read(64, buf) == 0);
  BOOST_TEST(buf == d);
  BOOST_TEST(c.Disconnect());
  BOOST_TEST(h.Finish().ok());
  BOOST_TEST(h.stats().error_replies == 12u);
}

BOOST_AUTO_TEST_CASE(ReadOnlyExportRefusesWrites) {
  Harness h(kSize, /*read_only=*/true);
  const uint16_t flags = h.Go();
  BOOST_TEST((flags & kFlagReadOnly) != 0);
  BOOST_TEST((flags & kFlagSendFua) == 0);
  auto& c = h.client();
  BOOST_TEST(c.Write(0, Pattern(100, 1)) == kEperm);
  BOOST_TEST(c.Command(kCmdTrim, 0, 0, 10) == kEinval);  // not offered
  BOOST_TEST(c.Flush() == 0);
  std::vector<std::byte> buf(100);
  BOOST_TEST(c.Read(0, buf) == 0);
  BOOST_TEST(std::all_of(buf.begin(), buf.end(), [](std::byte b) { return b == std::byte{0}; }));
  BOOST_TEST(c.Disconnect());
  BOOST_TEST(h.Finish().ok());
}

BOOST_AUTO_TEST_CASE(HostileRequestsAreDisconnected) {
  {
    Harness h;
    h.Go();
    // A WRITE whose payload exceeds the maximum cannot be skipped.
    BOOST_TEST(h.client().SendRequest(kCmdWrite, 0, 1, 0, (1 << 16) + 1));
    const Status s = h.Finish();
    BOOST_TEST(s.code() == Code::kInvalidArgument, s.ToString());
    BOOST_TEST(h.client().ClosedByServer());
  }
  {
    Harness h;
    h.Go();
    BOOST_TEST(h.client().SendRequest(kCmdRead, 0, 1, 0, 1, {}, 0x21e41c71));  // extended magic
    BOOST_TEST(h.Finish().code() == Code::kInvalidArgument);
  }
  {
    Harness h;
    h.Go();
    // Disconnect in the middle of a WRITE's payload: the reply never comes.
    std::vector<std::byte> half(3000);
    BOOST_TEST(h.client().SendRequest(kCmdWrite, 0, 1, 0, 8192, half));
    h.client().ShutdownWrite();
    const Status s = h.Finish();
    BOOST_TEST(s.code() == Code::kUnavailable, s.ToString());
  }
  {
    Harness h;
    h.Go();
    std::byte partial[10]{};
    StoreBE<uint32_t>(partial, kRequestMagic);
    BOOST_TEST(h.client().Send(partial));  // a truncated header
    h.client().ShutdownWrite();
    BOOST_TEST(h.Finish().code() == Code::kUnavailable);
  }
}

// Slow loris: half a request and then nothing; the frame deadline ends it.
BOOST_AUTO_TEST_CASE(StalledFrameTimesOut) {
  Harness h(kSize, false, [](SessionConfig& c) { c.frame_timeout = milliseconds(300); });
  h.Go();
  std::byte partial[5]{};
  StoreBE<uint32_t>(partial, kRequestMagic);
  BOOST_TEST(h.client().Send(partial));
  const Status s = h.Finish();
  BOOST_TEST(s.code() == Code::kTimeout, s.ToString());
  BOOST_TEST(h.client().ClosedByServer());
}

// An idle client is no problem; the daemon stopping ends its session cleanly.
BOOST_AUTO_TEST_CASE(StopEndsAnIdleSessionCleanly) {
  Harness h;
  h.Go();
  BOOST_TEST(h.client().Flush() == 0);
  h.Stop();
  BOOST_TEST(h.Finish().ok());
  BOOST_TEST(h.client().ClosedByServer());
}

// Stop during a frame: the frame gets the grace period, then the session
// ends.
BOOST_AUTO_TEST_CASE(StopDuringAFrameAllowsOnlyTheGrace) {
  Harness h(kSize, false, [](SessionConfig& c) {
    c.frame_timeout = std::chrono::seconds(60);
    c.stop_grace = milliseconds(200);
  });
  h.Go();
  std::byte partial[5]{};
  StoreBE<uint32_t>(partial, kRequestMagic);
  BOOST_TEST(h.client().Send(partial));
  h.Stop();
  const Status s = h.Finish();
  BOOST_TEST(s.code() == Code::kTimeout, s.ToString());
  BOOST_TEST(s.message().find("grace") != std::string::npos, s.ToString());
}

// Random byte streams after a valid prefix (none, the flags, a whole
// negotiation): the session ends, whatever the bytes, and never crashes.
BOOST_AUTO_TEST_CASE(RandomByteStreamsEndTheSession) {
  std::mt19937_64 rng(42);
  for (int i = 0; i < 300; ++i) {
    Harness h(1 << 16, false, [](SessionConfig& c) { c.frame_timeout = std::chrono::seconds(5); });
    auto& c = h.client();
    uint16_t hs = 0;
    BOOST_TEST_REQUIRE(c.ReadGreeting(&hs));
    const int prefix = i % 3;
    if (prefix >= 1) c.SendClientFlags(kClientFlagFixedNewstyle | kClientFlagNoZeroes);
    if (prefix == 2) {
      c.SendOption(kOptGo, NbdTestClient::InfoData("", {}));
      NbdTestClient::OptionReply r;
      do {
        BOOST_TEST_REQUIRE(c.ReadOptionReply(&r));
      } while (r.type == kRepInfo);
    }
    std::vector<std::byte> junk(rng() % 400);
    for (auto& b : junk) b = static_cast<std::byte>(rng());
    // Some requests well-formed up to the magic, to reach the checks.
    if (prefix == 2 && junk.size() >= 28 && (i % 2) == 0)
      StoreBE<uint32_t>(junk.data(), kRequestMagic);
    if (prefix == 1 && junk.size() >= 16 && (i % 2) == 0)
      StoreBE<uint64_t>(junk.data(), kOptionMagic);
    c.Send(junk);
    c.ShutdownWrite();
    BOOST_TEST(c.ClosedByServer());
    (void)h.Finish();
  }
}

// ---- The server: several clients, the connection limit, stop -------------

struct ServerHarness {
  explicit ServerHarness(size_t max_connections = 8) : exp(kSize) {
    char tmpl[] = "/tmp/vnvram-frontd-srv-XXXXXX";
    BOOST_TEST_REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    path = dir + "/nbd.sock";
    ServerConfig config;
    config.session.export_name = "vnvram";
    config.session.max_payload = 1 << 16;
    config.max_connections = max_connections;
    auto s = NbdServer::Create(exp, config);
    BOOST_TEST_REQUIRE(s.ok());
    server = std::move(s).value();
    auto fd = ListenUnix(path);
    BOOST_TEST_REQUIRE(fd.ok(), fd.status().ToString());
    server->AddListener(*fd, false);
    thread = std::thread([this] { result = server->Run(-1); });
  }
  ~ServerHarness() {
    server->Stop();
    if (thread.joinable()) thread.join();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  std::unique_ptr<NbdTestClient> Connect() {
    auto c = NbdTestClient::ConnectUnix(path);
    BOOST_TEST_REQUIRE(c != nullptr);
    return c;
  }

  MemoryExport exp;
  std::string dir, path;
  std::unique_ptr<NbdServer> server;
  std::thread thread;
  Status result;
};

// Writes on one connection, FLUSH on another: durable (CAN_MULTI_CONN).
BOOST_AUTO_TEST_CASE(FlushOnOneConnectionCoversAnothersWrites) {
  ServerHarness s;
  auto a = s.Connect();
  auto b = s.Connect();
  uint64_t size = 0;
  uint16_t flags = 0;
  BOOST_TEST_REQUIRE(a->Go("vnvram", &size, &flags));
  BOOST_TEST_REQUIRE(b->Go("", &size, &flags));
  BOOST_TEST((flags & kFlagCanMultiConn) != 0);
  const auto d = Pattern(5000, 4);
  BOOST_TEST(a->Write(777, d) == 0);
  std::vector<std::byte> back(5000);
  BOOST_TEST(b->Read(777, back) == 0);
  BOOST_TEST(back == d);
  BOOST_TEST(b->Flush() == 0);
  const auto durable = s.exp.durable();
  BOOST_TEST(std::equal(d.begin(), d.end(), durable.begin() + 777));
  BOOST_TEST(a->Disconnect());
  BOOST_TEST(b->Disconnect());
}

// A stalled hostile client does not hold up the others.
BOOST_AUTO_TEST_CASE(StalledClientDoesNotBlockOthers) {
  ServerHarness s;
  auto loris = s.Connect();
  uint64_t size = 0;
  uint16_t flags = 0;
  BOOST_TEST_REQUIRE(loris->Go("vnvram", &size, &flags));
  std::vector<std::byte> part(1000);
  BOOST_TEST(loris->SendRequest(kCmdWrite, 0, 1, 0, 4096, part));  // 3096 bytes short
  for (int i = 0; i < 4; ++i) {
    auto good = s.Connect();
    BOOST_TEST_REQUIRE(good->Go("vnvram", &size, &flags));
    const auto d = Pattern(4096, static_cast<uint8_t>(i));
    BOOST_TEST(good->Write(8192 * (i + 1), d, true) == 0);
    std::vector<std::byte> back(4096);
    BOOST_TEST(good->Read(8192 * (i + 1), back) == 0);
    BOOST_TEST(back == d);
    BOOST_TEST(good->Disconnect());
  }
  // Stop: the loris's frame gets the grace period and ends.
  s.server->Stop();
  s.thread.join();
  BOOST_TEST(s.result.ok());
  BOOST_TEST(loris->ClosedByServer());
}

BOOST_AUTO_TEST_CASE(ConnectionsBeyondTheLimitAreClosed) {
  ServerHarness s(2);
  auto a = s.Connect();
  auto b = s.Connect();
  uint64_t size = 0;
  uint16_t flags = 0;
  BOOST_TEST_REQUIRE(a->Go("vnvram", &size, &flags));
  BOOST_TEST_REQUIRE(b->Go("vnvram", &size, &flags));
  auto c = s.Connect();
  BOOST_TEST(c->ClosedByServer());  // no greeting, closed
  BOOST_TEST(s.server->refused() == 1u);
  BOOST_TEST(a->Disconnect());
  BOOST_TEST(a->ClosedByServer());
  // A slot is free once the session ended: a new client is served. The
  // end is an event on the server's side; wait for it through a client
  // that keeps trying only until its connection is accepted.
  std::unique_ptr<NbdTestClient> d;
  for (int i = 0; i < 200 && d == nullptr; ++i) {
    auto t = s.Connect();
    uint16_t hs = 0;
    if (t->ReadGreeting(&hs)) d = std::move(t);
  }
  BOOST_TEST_REQUIRE(d != nullptr);
  BOOST_TEST(d->SendClientFlags(1));
  BOOST_TEST(b->Flush() == 0);
}

}  // namespace
}  // namespace vnvram::frontd
