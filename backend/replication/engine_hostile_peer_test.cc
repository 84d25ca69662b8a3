// The replication engine against hostile and confused peers, in one
// process: an Engine for host "a" bound on tcp://127.0.0.1:*, and raw
// ZeroMQ DEALERs playing the other hosts of the cluster file ("b", "c"),
// each with its control link (routing id "<host>", where answers come) and
// its data link ("<host>/data", where requests go), as a real engine does
// (docs/replication.md "Sessions"). Frames without a session, HELLOs
// claiming another host, replays, frames of older epochs and forged frames
// are refused or idempotent and leave a's copy as it was; with CurveZMQ a
// listed key cannot speak for another host, and a client without a listed
// key never gets a frame through. a's copy is read through Engine::Find.
// Every wait is on a message (or a socket monitor event) with a deadline;
// "no answer" is proven by a HELLO sent after it, whose HELLO_ACK comes
// back on the same connection as any answer would have.
#define BOOST_TEST_MODULE replication_engine_hostile_peer_test
#include <stdlib.h>

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "backend/replication/curve.h"
#include "backend/replication/engine.h"
#include "backend/replication/message.h"
#include "backend/replication/testing/zmq_test_support.h"
#include "backend/replication/wire_format.h"
#include "common/endian.h"
#include "common/log.h"
#include "common/testing/temp_dir.h"

namespace vnvram::replication {
namespace {

using vnvram::testing::TempDir;

using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr auto kDeadline = 10s;
using testing::Monitor;
using testing::NewPair;
constexpr std::string_view kVolume = "5d2e8c1a-3f4b-4a6c-9e7d-1b2c3d4e5f60";
constexpr uint64_t kSize = 64 * 1024;
constexpr uint32_t kChunk = 4096;

Uuid Vol() {
  return *ParseUuid(kVolume);
}

struct Keys {
  CurveKeyPair a, b, c;
};

// Hosts a, b and c; one volume replicated on b (its first replica, so a
// never proposes an epoch by itself), a and c. b's and c's endpoints are
// ports nothing listens on: the engine's own DEALERs to them stay
// unconnected, and only the test's sockets talk to a.
ClusterConfig Cluster(const std::optional<Keys>& keys) {
  auto host = [&](const char* id, int port, const CurveKeyPair* k) {
    std::string s = std::string(R"({"id": ")") + id + R"(", "endpoint": "tcp://127.0.0.1:)" +
                    std::to_string(port) + "\"";
    if (k != nullptr) s += R"(, "public-key": ")" + k->public_z85 + "\"";
    return s + "}";
  };
  const std::string text =
      std::string(R"({"version": 1, "settings": {"heartbeat-interval-ms": 100,
        "peer-expiry-ms": 60000, "max-data": "4K", "resync-chunk-size": "4K"}, "hosts": [)") +
      host("a", 1, keys ? &keys->a : nullptr) + "," + host("b", 2, keys ? &keys->b : nullptr) +
      "," + host("c", 3, keys ? &keys->c : nullptr) + R"(], "volumes": [{"uuid": ")" +
      std::string(kVolume) + R"(", "name": "v", "size": "64K",
        "replicas": ["b", "a", "c"], "policy": "sync"}]})";
  auto c = ParseClusterConfig(text, "test cluster");
  BOOST_REQUIRE_MESSAGE(c.ok(), c.status().ToString());
  return *c;
}

Bytes Enc(const Message& m) {
  auto f = Encode(m);
  BOOST_REQUIRE_MESSAGE(f.ok(), f.status().ToString());
  return *f;
}

Replicate Rep(uint64_t epoch, uint64_t seq, uint64_t off, uint8_t fill, bool ack = true) {
  Replicate r;
  r.volume = Vol();
  r.epoch = epoch;
  r.sequence = seq;
  r.offset = off;
  r.ack_requested = ack;
  r.data.assign(16, std::byte{fill});
  return r;
}

// The first chunk of a resync run unless `first` is false.
ResyncChunk Chunk(uint64_t epoch, uint32_t index, uint64_t as_of, uint8_t fill, bool first = true) {
  ResyncChunk c;
  c.first = first;
  c.volume = Vol();
  c.epoch = epoch;
  c.as_of_sequence = as_of;
  c.chunk_size = kChunk;
  c.chunk_index = index;
  c.data.assign(kChunk, std::byte{fill});
  return c;
}

// One DEALER to the engine's ROUTER.
class Link {
 public:
  // `own` (with the server's public key) makes it a CURVE client.
  Link(zmq::context_t& ctx, const std::string& endpoint, const std::string& routing_id,
       const CurveKeyPair* own = nullptr, const std::string& server_key = "",
       std::unique_ptr<Monitor>* monitor = nullptr)
      : socket_(ctx, zmq::socket_type::dealer) {
    socket_.set(zmq::sockopt::routing_id, routing_id);
    socket_.set(zmq::sockopt::linger, 0);
    if (own != nullptr) {
      Status st = ConfigureCurveClient(socket_, *own, server_key);
      BOOST_REQUIRE_MESSAGE(st.ok(), st.ToString());
    }
    if (monitor != nullptr) {
      *monitor = std::make_unique<Monitor>(ctx, socket_);
      monitored_ = true;
    }
    socket_.connect(endpoint);
  }
  // Stops the monitor before the socket closes: libzmq sends monitor events
  // from its I/O thread with a blocking send, so an event of the socket's
  // teardown sent after the Monitor's PAIR is gone would hang that thread
  // and every other socket of the context with it.
  ~Link() {
    if (monitored_) (void)zmq_socket_monitor(socket_.handle(), nullptr, 0);
  }
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;

  void Send(const Bytes& frame) {
    BOOST_REQUIRE(socket_.send(zmq::message_t(frame.data(), frame.size()), zmq::send_flags::none));
  }
  void Send(const Message& m) { Send(Enc(m)); }

  // The next frame that arrives, decoded; kTimeout after the deadline.
  Result<Message> Next() {
    zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, std::chrono::duration_cast<std::chrono::milliseconds>(kDeadline));
    if ((item.revents & ZMQ_POLLIN) == 0) return Status::Timeout("no answer");
    zmq::message_t msg;
    BOOST_REQUIRE(socket_.recv(msg, zmq::recv_flags::none));
    BOOST_REQUIRE(!msg.more());
    return Decode({static_cast<const std::byte*>(msg.data()), msg.size()});
  }

  // Sends `frame` and waits for the answer on this same link.
  Result<Message> Exchange(const Bytes& frame) {
    Send(frame);
    return Next();
  }
  Result<Message> Exchange(const Message& m) { return Exchange(Enc(m)); }

 private:
  zmq::socket_t socket_;
  bool monitored_ = false;
};

// A host as the engine sees it: requests on "<id>/data", answers on "<id>".
class FakeHost {
 public:
  FakeHost(zmq::context_t& ctx, const std::string& endpoint, std::string id,
           const CurveKeyPair* own = nullptr, const std::string& server_key = "")
      : ctx_(ctx),
        endpoint_(endpoint),
        id_(std::move(id)),
        own_(own),
        server_key_(server_key),
        control_(ctx, endpoint, id_, own, server_key) {
    // The engine answers a known host on its control link, and drops an
    // answer (ROUTER_MANDATORY) while that link is not connected: wait until
    // it is. INSPECT is answered on the link it came on.
    auto r = control_.Exchange(Inspect{Vol(), 0, 1});
    BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    BOOST_REQUIRE(std::holds_alternative<InspectReply>(*r));
    OpenData();
  }

  // A request on the data link (no answer awaited).
  void Send(const Bytes& frame) { data_->Send(frame); }
  void Send(const Message& m) { data_->Send(m); }
  // A request on the data link and its answer on the control link.
  Result<Message> Request(const Bytes& frame) {
    data_->Send(frame);
    return control_.Next();
  }
  Result<Message> Request(const Message& m) { return Request(Enc(m)); }

  // HELLO; the HELLO_ACK.
  void OpenSession(uint64_t incarnation = 7) {
    auto r = Request(Hello{id_, incarnation, wire::kMaxData});
    BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    BOOST_REQUIRE_MESSAGE(std::holds_alternative<HelloAck>(*r),
                          "HELLO answered with type " << static_cast<int>(TypeOf(*r)));
    BOOST_TEST(std::get<HelloAck>(*r).host_id == "a");
  }
  // Proves that nothing sent before it was answered: answers come back in
  // order on the control link, so the HELLO_ACK is the next message.
  // (HELLO also resets the engine's count of bad frames in a row.)
  void NothingAnswered() { OpenSession(incarnation_); }

  // b (in session) wins epoch `e` with a's vote and brings a's copy in sync
  // at sequence `seq` with a one-chunk resync whose chunk 0 is `fill`.
  void Lead(uint64_t e, uint64_t last_epoch, uint64_t last_seq, uint64_t seq, uint8_t fill) {
    auto r = Request(EpochPropose{Vol(), e, last_epoch, last_seq, id_});
    BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    BOOST_REQUIRE_MESSAGE(std::holds_alternative<EpochAccept>(*r),
                          "EPOCH_PROPOSE answered with type " << static_cast<int>(TypeOf(*r)));
    Send(Chunk(e, 0, seq, fill));
    auto d = Request(ResyncDone{Vol(), e, seq, 1});
    BOOST_REQUIRE_MESSAGE(d.ok(), d.status().ToString());
    BOOST_REQUIRE(std::holds_alternative<Ack>(*d));
    BOOST_REQUIRE(std::get<Ack>(*d).status == wire::AckStatus::kOk);
    BOOST_REQUIRE(std::get<Ack>(*d).acked_sequence == seq);
  }

  void set_incarnation(uint64_t i) { incarnation_ = i; }
  // Closes the data link / opens a new one.
  void CloseData() { data_.reset(); }
  void OpenData() {
    data_ = std::make_unique<Link>(ctx_, endpoint_, id_ + "/data", own_, server_key_);
  }

 private:
  zmq::context_t& ctx_;
  const std::string endpoint_;
  const std::string id_;
  const CurveKeyPair* own_;
  const std::string server_key_;
  uint64_t incarnation_ = 7;
  Link control_;
  std::unique_ptr<Link> data_;
};

void ExpectInvalid(const Result<Message>& m, wire::InvalidReason want, const std::string& what) {
  BOOST_TEST_REQUIRE(m.ok(), what << ": " << m.status().ToString());
  const auto* inv = std::get_if<Invalid>(&*m);
  BOOST_TEST_REQUIRE(inv != nullptr,
                     what << ": answered with type " << static_cast<int>(TypeOf(*m)));
  BOOST_TEST(static_cast<uint32_t>(inv->reason) == static_cast<uint32_t>(want),
             what << ": reason " << static_cast<uint32_t>(inv->reason) << " (" << inv->text << ")");
}

void ExpectAck(const Result<Message>& m, wire::AckStatus status, uint64_t epoch, uint64_t seq,
               const std::string& what) {
  BOOST_TEST_REQUIRE(m.ok(), what << ": " << m.status().ToString());
  const auto* ack = std::get_if<Ack>(&*m);
  BOOST_TEST_REQUIRE(ack != nullptr,
                     what << ": answered with type " << static_cast<int>(TypeOf(*m)));
  BOOST_TEST(static_cast<uint32_t>(ack->status) == static_cast<uint32_t>(status), what);
  BOOST_TEST(ack->epoch == epoch, what);
  BOOST_TEST(ack->acked_sequence == seq, what);
}

// Engine "a" with its own ZeroMQ context; the test's sockets use ctx.
// Members are destroyed in reverse: the test's sockets (declared in the
// test body, after the fixture) go first, then the engine, then ctx.
struct Harness {
  explicit Harness(bool curve) {
    if (curve) keys = Keys{NewPair(), NewPair(), NewPair()};
    EngineOptions o;
    o.host_id = "a";
    o.cluster = Cluster(keys);
    o.state_dir = dir.path;
    if (keys) o.keys = keys->a;
    o.listen = "tcp://127.0.0.1:*";
    auto e = Engine::Start(std::move(o));
    BOOST_REQUIRE_MESSAGE(e.ok(), e.status().ToString());
    engine = std::move(e).value();
    endpoint = engine->endpoint();
  }
  ~Harness() {
    if (engine) (void)engine->Shutdown();
  }

  VolumeView View() const { return engine->Find(Vol())->View(); }
  int At(uint64_t off) const {
    InspectReply r = engine->Find(Vol())->Inspect(Inspect{Vol(), off, 1});
    BOOST_REQUIRE(r.data.size() == 1u);
    return static_cast<int>(r.data[0]);
  }
  // A FakeHost for `id` with its listed key (CurveZMQ) or none.
  std::unique_ptr<FakeHost> Host(const std::string& id) {
    const CurveKeyPair* own = nullptr;
    if (keys) own = id == "b" ? &keys->b : &keys->c;
    return std::make_unique<FakeHost>(ctx, endpoint, id, own, keys ? keys->a.public_z85 : "");
  }

  zmq::context_t ctx;
  TempDir dir;
  std::optional<Keys> keys;
  std::unique_ptr<Engine> engine;
  std::string endpoint;
};

struct Quiet {
  Quiet() { log::Init("replication_engine_hostile_peer_test", log::Level::kError); }
};
BOOST_TEST_GLOBAL_FIXTURE(Quiet);

// ---------------------------------------------------------------------------
// Without keys.

BOOST_AUTO_TEST_CASE(RequestsBeforeHelloAreRefusedAndChangeNothing) {
  Harness h(false);
  auto b = h.Host("b");
  using wire::InvalidReason;
  ExpectInvalid(b->Request(Rep(1, 1, 0, 0xee)), InvalidReason::kNoSession, "REPLICATE");
  ExpectInvalid(b->Request(Chunk(1, 0, 0, 0xee)), InvalidReason::kNoSession, "RESYNC_CHUNK");
  ExpectInvalid(b->Request(ResyncDone{Vol(), 1, 0, 1}), InvalidReason::kNoSession, "RESYNC_DONE");
  ExpectInvalid(b->Request(EpochPropose{Vol(), 1, 0, 0, "b"}), InvalidReason::kNoSession,
                "EPOCH_PROPOSE");
  ExpectInvalid(b->Request(ResyncRequest{Vol(), 1, 0, kChunk}), InvalidReason::kNoSession,
                "RESYNC_REQUEST");
  ExpectInvalid(b->Request(Heartbeat{7, 1}), InvalidReason::kNoSession, "HEARTBEAT");
  // HELLO claiming another host, listed or not, over b's connection.
  ExpectInvalid(b->Request(Hello{"c", 7, wire::kMaxData}), InvalidReason::kUnknownPeer,
                "HELLO as c over b's link");
  ExpectInvalid(b->Request(Hello{"mallory", 7, wire::kMaxData}), InvalidReason::kUnknownPeer,
                "HELLO as an unlisted host");
  ExpectInvalid(b->Request(Rep(1, 1, 0, 0xee)), InvalidReason::kNoSession,
                "REPLICATE after refused HELLOs");
  // Nothing was applied, promised or followed.
  const VolumeView v = h.View();
  BOOST_TEST(v.promise == 0u);
  BOOST_TEST(v.content_epoch == 0u);
  BOOST_TEST(v.content_seq == 0u);
  BOOST_TEST(v.syncing_epoch == 0u);
  BOOST_TEST(h.At(0) == 0);
  // The real HELLO opens the session.
  b->OpenSession();
  b->Lead(1, 0, 0, 0, 0);
  ExpectAck(b->Request(Rep(1, 1, 0, 0x11)), wire::AckStatus::kOk, 1, 1, "first REPLICATE");
  BOOST_TEST(h.At(0) == 0x11);
}

BOOST_AUTO_TEST_CASE(ReplayedReplicateIsAcknowledgedAndChangesNothing) {
  Harness h(false);
  auto b = h.Host("b");
  b->OpenSession();
  b->Lead(1, 0, 0, 0, 0);
  b->Send(Rep(1, 1, 0, 0x11, /*ack=*/false));
  ExpectAck(b->Request(Rep(1, 2, 0, 0x22)), wire::AckStatus::kOk, 1, 2, "REPLICATE 2");
  BOOST_TEST(h.At(0) == 0x22);
  // The same frames again, and a "replay" of 2 carrying other bytes.
  ExpectAck(b->Request(Rep(1, 1, 0, 0x11)), wire::AckStatus::kOk, 1, 2, "replay of 1");
  ExpectAck(b->Request(Rep(1, 2, 0, 0x22)), wire::AckStatus::kOk, 1, 2, "replay of 2");
  ExpectAck(b->Request(Rep(1, 2, 0, 0x99)), wire::AckStatus::kOk, 1, 2, "forged replay of 2");
  BOOST_TEST(h.At(0) == 0x22);
  BOOST_TEST(h.View().content_seq == 2u);
  // A frame from the future is a gap, not applied.
  auto g = b->Request(Rep(1, 5, 0, 0x55));
  BOOST_TEST_REQUIRE(g.ok(), g.status().ToString());
  BOOST_TEST_REQUIRE(std::holds_alternative<Gap>(*g));
  BOOST_TEST(std::get<Gap>(*g).expected_sequence == 3u);
  BOOST_TEST(h.At(0) == 0x22);
  // The stream goes on where it was.
  ExpectAck(b->Request(Rep(1, 3, 0, 0x33)), wire::AckStatus::kOk, 1, 3, "REPLICATE 3");
  BOOST_TEST(h.At(0) == 0x33);
}

BOOST_AUTO_TEST_CASE(ReplayedResyncFramesDoNotRollTheCopyBack) {
  Harness h(false);
  auto b = h.Host("b");
  b->OpenSession();
  auto r = b->Request(EpochPropose{Vol(), 1, 0, 0, "b"});
  BOOST_TEST_REQUIRE(r.ok(), r.status().ToString());
  BOOST_TEST_REQUIRE(std::holds_alternative<EpochAccept>(*r));
  // A resync while writes go on: chunk 0 as of 5, then writes 6 and 7 of
  // the same bytes; then 6 and the chunk delivered again.
  b->Send(Chunk(1, 0, 5, 0x55));
  b->Send(Rep(1, 6, 0, 0x66));
  b->Send(Rep(1, 7, 0, 0x77));
  b->Send(Rep(1, 6, 0, 0x66));
  b->Send(Chunk(1, 0, 5, 0x55));
  b->NothingAnswered();
  BOOST_TEST(h.At(0) == 0x77);
  BOOST_TEST(h.At(100) == 0x55);
  // A RESYNC_DONE older than what the stream carried does not end it.
  b->Send(ResyncDone{Vol(), 1, 5, 1});
  b->NothingAnswered();
  BOOST_TEST(h.View().syncing_epoch == 1u);
  BOOST_TEST(!h.View().vouch);
  ExpectAck(b->Request(ResyncDone{Vol(), 1, 7, 1}), wire::AckStatus::kOk, 1, 7, "RESYNC_DONE");
  BOOST_TEST(h.View().vouch);
  BOOST_TEST(h.At(0) == 0x77);
  // After the resync: its chunk and its end again change nothing.
  b->Send(Chunk(1, 0, 5, 0x55));
  ExpectAck(b->Request(ResyncDone{Vol(), 1, 7, 1}), wire::AckStatus::kOk, 1, 7, "replayed DONE");
  ExpectAck(b->Request(ResyncDone{Vol(), 1, 5, 1}), wire::AckStatus::kOk, 1, 7, "older DONE");
  const VolumeView v = h.View();
  BOOST_TEST(v.syncing_epoch == 0u);
  BOOST_TEST(v.vouch);
  BOOST_TEST(v.content_epoch == 1u);
  BOOST_TEST(v.content_seq == 7u);
  BOOST_TEST(h.At(0) == 0x77);
  BOOST_TEST(h.At(100) == 0x55);
  ExpectAck(b->Request(Rep(1, 8, 0, 0x88)), wire::AckStatus::kOk, 1, 8, "REPLICATE 8");
}

BOOST_AUTO_TEST_CASE(FramesOfASupersededEpochAreFencedAndChangeNothing) {
  Harness h(false);
  auto b = h.Host("b");
  auto c = h.Host("c");
  b->OpenSession();
  b->Lead(1, 0, 0, 0, 0);
  ExpectAck(b->Request(Rep(1, 1, 0, 0x11)), wire::AckStatus::kOk, 1, 1, "REPLICATE 1");
  // c wins epoch 2 (a votes) and resyncs a with its copy.
  c->OpenSession();
  c->Lead(2, 1, 1, 1, 0x11);
  ExpectAck(c->Request(Rep(2, 2, 0, 0x22)), wire::AckStatus::kOk, 2, 2, "c's REPLICATE 2");
  // b, the old primary, restarted (a new incarnation) or not, and every
  // kind of frame of its epoch, replayed or new.
  for (uint64_t incarnation : {7u, 8u}) {
    b->set_incarnation(incarnation);
    b->OpenSession(incarnation);
    using wire::AckStatus;
    ExpectAck(b->Request(Rep(1, 1, 0, 0x11)), AckStatus::kStaleEpoch, 2, 0, "replayed REPLICATE");
    ExpectAck(b->Request(Rep(1, 2, 0, 0xee)), AckStatus::kStaleEpoch, 2, 0, "REPLICATE of 1");
    ExpectAck(b->Request(Chunk(1, 0, 9, 0xee)), AckStatus::kStaleEpoch, 2, 0, "RESYNC_CHUNK");
    ExpectAck(b->Request(ResyncDone{Vol(), 1, 9, 1}), AckStatus::kStaleEpoch, 2, 0, "RESYNC_DONE");
    auto p = b->Request(EpochPropose{Vol(), 2, 1, 1, "b"});
    BOOST_TEST_REQUIRE(p.ok(), p.status().ToString());
    BOOST_TEST_REQUIRE(std::holds_alternative<EpochReject>(*p));
    BOOST_TEST(static_cast<uint32_t>(std::get<EpochReject>(*p).reason) ==
               static_cast<uint32_t>(wire::RejectReason::kStaleEpoch));
    // A candidate may only propose itself.
    p = b->Request(EpochPropose{Vol(), 9, 1, 1, "c"});
    BOOST_TEST_REQUIRE(p.ok(), p.status().ToString());
    BOOST_TEST_REQUIRE(std::holds_alternative<EpochReject>(*p));
    BOOST_TEST(static_cast<uint32_t>(std::get<EpochReject>(*p).reason) ==
               static_cast<uint32_t>(wire::RejectReason::kNotReplica));
  }
  const VolumeView v = h.View();
  BOOST_TEST(v.promise == 2u);
  BOOST_TEST(v.content_epoch == 2u);
  BOOST_TEST(v.content_seq == 2u);
  BOOST_TEST(v.vouch);
  BOOST_TEST(h.At(0) == 0x22);
  ExpectAck(c->Request(Rep(2, 3, 0, 0x33)), wire::AckStatus::kOk, 2, 3, "c goes on");
}

BOOST_AUTO_TEST_CASE(ForgedFramesAreRefusedWithTheirReasonAndChangeNothing) {
  Harness h(false);
  auto b = h.Host("b");
  b->OpenSession();
  b->Lead(1, 0, 0, 0, 0);
  ExpectAck(b->Request(Rep(1, 1, 0, 0x11)), wire::AckStatus::kOk, 1, 1, "REPLICATE 1");
  const Bytes good = Enc(Rep(1, 2, 0, 0xee));
  // Field offsets in a REPLICATE (wire_format.h).
  constexpr size_t kEpochAt = wire::kHeaderSize + wire::kUuidSize;
  constexpr size_t kLengthAt = kEpochAt + 8 + 8 + 8;
  using wire::InvalidReason;
  {
    Bytes f = good;
    f.at(f.size() - 1) ^= std::byte{1};
    ExpectInvalid(b->Request(f), InvalidReason::kBadChecksum, "data not matching its CRC");
  }
  {
    Bytes f = good;
    StoreLE<uint32_t>(f.data() + wire::kBodyLengthOffset,
                      LoadLE<uint32_t>(f.data() + wire::kBodyLengthOffset) - 1);
    ExpectInvalid(b->Request(f), InvalidReason::kMalformed, "body length one short");
  }
  {
    Bytes f = good;
    StoreLE<uint32_t>(f.data() + kLengthAt, 17);
    ExpectInvalid(b->Request(f), InvalidReason::kMalformed, "data length past the body");
  }
  {
    Bytes f(good.begin(), good.end() - 1);
    ExpectInvalid(b->Request(f), InvalidReason::kMalformed, "truncated");
  }
  {
    Bytes f = good;
    StoreLE<uint64_t>(f.data() + kEpochAt, 0);
    ExpectInvalid(b->Request(f), InvalidReason::kMalformed, "epoch 0");
  }
  {
    Bytes f = good;
    f[wire::kVersionOffset] = std::byte{wire::kVersion + 1};
    ExpectInvalid(b->Request(f), InvalidReason::kBadVersion, "another version");
  }
  {
    // More data than this cluster's max-data (4K), and a header announcing
    // 4 GiB: refused from the header.
    Replicate big = Rep(1, 2, 0, 0xee);
    big.data.assign(8192, std::byte{0xee});
    auto f = Encode(big);
    BOOST_TEST_REQUIRE(f.ok(), f.status().ToString());
    ExpectInvalid(b->Request(*f), InvalidReason::kOversize, "8K of data");
    Bytes huge(good.begin(), good.begin() + wire::kHeaderSize);
    StoreLE<uint32_t>(huge.data() + wire::kBodyLengthOffset, 0xfffffff0u);
    ExpectInvalid(b->Request(huge), InvalidReason::kOversize, "4 GiB header");
  }
  // Well-formed but outside the volume: refused by the replica.
  ExpectAck(b->Request(Rep(1, 2, kSize - 8, 0xee)), wire::AckStatus::kOutOfRange, 1, 1,
            "range past the end");
  // Answers (ACK, EPOCH_ACCEPT, ...) are not requests.
  ExpectInvalid(b->Request(Ack{Vol(), 1, 1, wire::AckStatus::kOk}), InvalidReason::kMalformed,
                "ACK sent as a request");
  BOOST_TEST(h.At(0) == 0x11);
  BOOST_TEST(h.At(kSize - 8) == 0);
  BOOST_TEST(h.View().content_seq == 1u);
  // Fewer than sixteen in a row: the session holds.
  ExpectAck(b->Request(Rep(1, 2, 0, 0x22)), wire::AckStatus::kOk, 1, 2, "REPLICATE 2");
  BOOST_TEST(h.At(0) == 0x22);
}

BOOST_AUTO_TEST_CASE(SixteenBadFramesInARowEndTheSession) {
  Harness h(false);
  auto b = h.Host("b");
  b->OpenSession();
  b->Lead(1, 0, 0, 0, 0);
  ExpectAck(b->Request(Rep(1, 1, 0, 0x11)), wire::AckStatus::kOk, 1, 1, "REPLICATE 1");
  Bytes garbage(40, std::byte{0x5a});
  for (int i = 0; i < 16; ++i) {
    ExpectInvalid(b->Request(garbage), wire::InvalidReason::kMalformed,
                  "garbage " + std::to_string(i));
  }
  // The session is closed: the next request is refused until HELLO.
  ExpectInvalid(b->Request(Rep(1, 2, 0, 0xee)), wire::InvalidReason::kNoSession,
                "REPLICATE after the bad frames");
  BOOST_TEST(h.At(0) == 0x11);
  b->OpenSession();
  ExpectAck(b->Request(Rep(1, 2, 0, 0x22)), wire::AckStatus::kOk, 1, 2, "REPLICATE after HELLO");
  BOOST_TEST(h.At(0) == 0x22);
}

BOOST_AUTO_TEST_CASE(MessageAboveTheSizeLimitEndsOnlyItsConnection) {
  Harness h(false);
  auto b = h.Host("b");
  b->OpenSession();
  b->Lead(1, 0, 0, 0, 0);
  // Up to 4 MiB a message is read and an oversize frame answered ...
  Link stranger(h.ctx, h.endpoint, "stranger");
  Bytes two_mib(wire::kHeaderSize + (2u << 20), std::byte{0x5a});
  std::memcpy(two_mib.data(), wire::kSignature, sizeof(wire::kSignature));
  two_mib[wire::kVersionOffset] = std::byte{wire::kVersion};
  two_mib[wire::kTypeOffset] = std::byte{static_cast<uint8_t>(wire::MessageType::kReplicate)};
  StoreLE<uint16_t>(two_mib.data() + wire::kFlagsOffset, 0);
  StoreLE<uint32_t>(two_mib.data() + wire::kBodyLengthOffset, 2u << 20);
  StoreLE<uint32_t>(two_mib.data() + wire::kReservedOffset, 0);
  ExpectInvalid(stranger.Exchange(two_mib), wire::InvalidReason::kOversize, "2 MiB frame");
  // ... a larger one is never taken in whole: libzmq drops the connection
  // as soon as it reads the length (ZMQ_MAXMSGSIZE).
  std::unique_ptr<Monitor> monitor;
  Link flooder(h.ctx, h.endpoint, "flooder", nullptr, "", &monitor);
  flooder.Send(Bytes((64u << 20), std::byte{0x5a}));
  BOOST_TEST(monitor->WaitFor(ZMQ_EVENT_DISCONNECTED).has_value());
  // Everyone else is served as before.
  ExpectAck(b->Request(Rep(1, 1, 0, 0x11)), wire::AckStatus::kOk, 1, 1, "b's REPLICATE");
  BOOST_TEST(h.At(0) == 0x11);
}

// ---------------------------------------------------------------------------
// With CurveZMQ keys.

struct CurveOnly {
  boost::test_tools::assertion_result operator()(boost::unit_test::test_unit_id) const {
    boost::test_tools::assertion_result r(CurveSupported());
    r.message() << "libzmq was built without CURVE";
    return r;
  }
};

BOOST_AUTO_TEST_SUITE(Curve, *boost::unit_test::precondition(CurveOnly()))

BOOST_AUTO_TEST_CASE(ListedKeyCannotSpeakForAnotherHost) {
  Harness h(true);
  auto b = h.Host("b");
  b->OpenSession();
  b->Lead(1, 0, 0, 0, 0);
  ExpectAck(b->Request(Rep(1, 1, 0, 0x11)), wire::AckStatus::kOk, 1, 1, "REPLICATE 1");

  // c holds a listed key. Over its own connection it cannot claim b ...
  auto c = h.Host("c");
  ExpectInvalid(c->Request(Hello{"b", 7, wire::kMaxData}), wire::InvalidReason::kUnknownPeer,
                "HELLO as b over c's link");
  // ... and with b's routing id (b's data link closed meanwhile, so that
  // the ROUTER hands the routing id over) every frame is refused, answered
  // on the impostor's own connection, and not counted against b.
  b->CloseData();
  {
    Link impostor(h.ctx, h.endpoint, "b/data", &h.keys->c, h.keys->a.public_z85);
    using wire::InvalidReason;
    ExpectInvalid(impostor.Exchange(Hello{"b", 7, wire::kMaxData}), InvalidReason::kUnknownPeer,
                  "HELLO as b with c's key");
    ExpectInvalid(impostor.Exchange(Rep(1, 2, 0, 0xee)), InvalidReason::kUnknownPeer,
                  "REPLICATE as b with c's key");
    ExpectInvalid(impostor.Exchange(EpochPropose{Vol(), 5, 1, 1, "b"}), InvalidReason::kUnknownPeer,
                  "EPOCH_PROPOSE as b with c's key");
    Bytes garbage(40, std::byte{0x5a});
    for (int i = 0; i < 20; ++i) {
      ExpectInvalid(impostor.Exchange(garbage), InvalidReason::kMalformed,
                    "garbage as b " + std::to_string(i));
    }
  }
  BOOST_TEST(h.At(0) == 0x11);
  BOOST_TEST(h.View().promise == 1u);
  BOOST_TEST(h.View().content_seq == 1u);
  // b's session is intact: its next REPLICATE is applied without a HELLO.
  b->OpenData();
  ExpectAck(b->Request(Rep(1, 2, 0, 0x22)), wire::AckStatus::kOk, 1, 2, "b's REPLICATE 2");
  BOOST_TEST(h.At(0) == 0x22);
  // And c, as itself, is admitted.
  c->OpenSession();
}

BOOST_AUTO_TEST_CASE(ClientsWithoutAListedKeyNeverGetAFrameThrough) {
  Harness h(true);
  const CurveKeyPair stranger = NewPair();
  {
    // No CurveZMQ at all, and a CURVE client whose key is not listed: the
    // handshake fails; their HELLO and REPLICATE never leave their socket.
    std::unique_ptr<Monitor> plain_monitor;
    Link plain(h.ctx, h.endpoint, "b/data", nullptr, "", &plain_monitor);
    plain.Send(Hello{"b", 7, wire::kMaxData});
    plain.Send(Rep(1, 1, 0, 0xee));
    BOOST_TEST(plain_monitor->WaitFor(ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL).has_value());

    std::unique_ptr<Monitor> stranger_monitor;
    Link unlisted(h.ctx, h.endpoint, "b/data", &stranger, h.keys->a.public_z85, &stranger_monitor);
    unlisted.Send(Hello{"b", 7, wire::kMaxData});
    unlisted.Send(Rep(1, 1, 0, 0xee));
    auto refused = stranger_monitor->WaitFor(ZMQ_EVENT_HANDSHAKE_FAILED_AUTH);
    BOOST_TEST_REQUIRE(refused.has_value());
    BOOST_TEST(*refused == 400);
  }
  // The real b finds no session (its HELLO never came) and an untouched copy.
  auto b = h.Host("b");
  ExpectInvalid(b->Request(Rep(1, 1, 0, 0xee)), wire::InvalidReason::kNoSession,
                "REPLICATE before b's own HELLO");
  BOOST_TEST(h.View().promise == 0u);
  BOOST_TEST(h.View().content_seq == 0u);
  BOOST_TEST(h.At(0) == 0);
  b->OpenSession();
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace vnvram::replication
