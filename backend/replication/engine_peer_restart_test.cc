// A primary's view of a replica that restarts, in one process: an Engine
// for host "a" (the volume's first replica, so it proposes epoch 1 at
// start-up) and a raw ZeroMQ ROUTER playing host "b" where a's DEALERs
// connect. "b" answers HELLO, accepts the epoch, takes the resync and
// acknowledges it; then it "restarts": a new ROUTER on the same endpoint
// answering HELLO with a new incarnation, and no HELLO of its own to a.
// The copy b's new process holds is not the one a resynced, so a must send
// the whole copy again, not the chunks dirtied since b's old position.
// Every wait is on a message with a deadline.
#define BOOST_TEST_MODULE replication_engine_peer_restart_test
#include <stdlib.h>

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <zmq.hpp>

#include "backend/replication/cluster_config.h"
#include "backend/replication/engine.h"
#include "backend/replication/message.h"
#include "backend/replication/testing/zmq_test_support.h"
#include "common/log.h"
#include "common/testing/temp_dir.h"

namespace vnvram::replication {
namespace {

using vnvram::testing::TempDir;

using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr auto kDeadline = 10s;
constexpr std::string_view kVolume = "7c0e2b4d-1a3f-4e5d-8b6c-2d3e4f5a6b70";
constexpr uint32_t kChunks = 16;  // 64K in 4K chunks

Uuid Vol() {
  return *ParseUuid(kVolume);
}

// Host b as a's DEALERs see it: a ROUTER answering on a's control link
// (routing id "a"; a's data link is "a/data").
class FakeReplica {
 public:
  FakeReplica(zmq::context_t& ctx, const std::string& endpoint, uint64_t incarnation)
      : socket_(ctx, zmq::socket_type::router), incarnation_(incarnation) {
    socket_.set(zmq::sockopt::linger, 0);
    monitor_ = std::make_unique<testing::Monitor>(ctx, socket_);
    socket_.bind(endpoint);
    endpoint_ = socket_.get(zmq::sockopt::last_endpoint);
  }
  const std::string& endpoint() const { return endpoint_; }

  // Stops listening and waits until the port is free for the next process.
  void Unbind() {
    socket_.unbind(endpoint_);
    BOOST_REQUIRE_MESSAGE(monitor_->WaitFor(ZMQ_EVENT_CLOSED).has_value(),
                          "the listener never closed:" << monitor_->Seen());
  }

  // Plays b until a's resync run ends: answers HELLO, accepts epoch
  // proposals, counts the run's chunks and acknowledges RESYNC_DONE.
  // Returns the chunks of the run RESYNC_DONE ended, or nullopt at the
  // deadline.
  std::optional<uint32_t> ServeUntilResynced() {
    const auto deadline = std::chrono::steady_clock::now() + kDeadline;
    std::optional<uint32_t> run;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, left);
      if ((item.revents & ZMQ_POLLIN) == 0) continue;
      zmq::message_t id, payload;
      BOOST_REQUIRE(socket_.recv(id));
      BOOST_REQUIRE(id.more());
      BOOST_REQUIRE(socket_.recv(payload));
      auto m = Decode({static_cast<const std::byte*>(payload.data()), payload.size()});
      BOOST_REQUIRE_MESSAGE(m.ok(), m.status().ToString());
      if (std::holds_alternative<Hello>(*m)) {
        Answer(HelloAck{"b", incarnation_, wire::kMaxData});
      } else if (auto* p = std::get_if<EpochPropose>(&*m)) {
        Answer(EpochAccept{Vol(), p->proposed_epoch, 0, 0});
      } else if (auto* c = std::get_if<ResyncChunk>(&*m)) {
        if (c->first) run = 0;
        if (run) ++*run;
      } else if (auto* d = std::get_if<ResyncDone>(&*m)) {
        BOOST_REQUIRE_MESSAGE(run.has_value(), "RESYNC_DONE without a first chunk");
        BOOST_TEST(d->chunks_sent == *run);
        Answer(Ack{Vol(), d->epoch, d->sequence, wire::AckStatus::kOk});
        return run;
      }
    }
  }

 private:
  void Answer(const Message& m) {
    auto f = Encode(m);
    BOOST_REQUIRE_MESSAGE(f.ok(), f.status().ToString());
    socket_.send(zmq::buffer(std::string_view("a")), zmq::send_flags::sndmore);
    socket_.send(zmq::buffer(f->data(), f->size()), zmq::send_flags::none);
  }

  zmq::socket_t socket_;
  std::unique_ptr<testing::Monitor> monitor_;  // declared after the socket it watches
  std::string endpoint_;
  uint64_t incarnation_;
};

ClusterConfig Cluster(const std::string& b_endpoint) {
  const std::string text =
      R"({"version": 1, "settings": {"heartbeat-interval-ms": 50, "peer-expiry-ms": 2000,
        "max-data": "4K", "resync-chunk-size": "4K"}, "hosts": [
        {"id": "a", "endpoint": "tcp://127.0.0.1:1"},
        {"id": "b", "endpoint": ")" +
      b_endpoint + R"("},
        {"id": "c", "endpoint": "tcp://127.0.0.1:2"}], "volumes": [{"uuid": ")" +
      std::string(kVolume) + R"(", "name": "v", "size": "64K",
        "replicas": ["a", "b", "c"], "policy": "sync"}]})";
  auto c = ParseClusterConfig(text, "test cluster");
  BOOST_REQUIRE_MESSAGE(c.ok(), c.status().ToString());
  return *c;
}

struct Quiet {
  Quiet() { log::Init("replication_engine_peer_restart_test", log::Level::kError); }
};
BOOST_TEST_GLOBAL_FIXTURE(Quiet);

BOOST_AUTO_TEST_CASE(AReplicaThatRestartedGetsAFullCopyEvenBeforeItsOwnHello) {
  zmq::context_t ctx;
  TempDir dir;
  auto b = std::make_unique<FakeReplica>(ctx, "tcp://127.0.0.1:*", 1);
  const std::string endpoint = b->endpoint();
  EngineOptions o;
  o.host_id = "a";
  o.cluster = Cluster(endpoint);
  o.state_dir = dir.path;
  o.listen = "tcp://127.0.0.1:*";
  auto e = Engine::Start(std::move(o));
  BOOST_REQUIRE_MESSAGE(e.ok(), e.status().ToString());
  std::unique_ptr<Engine> a = std::move(e).value();

  // a proposes epoch 1, b accepts, a resyncs b: a new replica gets it all.
  const std::optional<uint32_t> first = b->ServeUntilResynced();
  BOOST_REQUIRE_MESSAGE(first.has_value(), "a never resynced b");
  BOOST_TEST(*first >= 1u);
  BOOST_TEST((a->Find(Vol())->View().role == Role::kPrimary));

  // b's process dies and a new one (an older copy, say, from its vault)
  // answers on the same endpoint. Its only word to a is the HELLO_ACK.
  b->Unbind();
  b.reset();
  b = std::make_unique<FakeReplica>(ctx, endpoint, 2);
  const std::optional<uint32_t> again = b->ServeUntilResynced();
  BOOST_REQUIRE_MESSAGE(again.has_value(), "a never resynced the restarted b");
  BOOST_TEST(*again == kChunks,
             "a resynced the new process with " << *again << " of " << kChunks << " chunks");
  b.reset();
  BOOST_TEST(a->Shutdown().ok());
}

}  // namespace
}  // namespace vnvram::replication
