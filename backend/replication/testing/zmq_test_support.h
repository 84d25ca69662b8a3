// Test support for the replication tests that drive ZeroMQ sockets by hand
// (curve_test, engine_hostile_peer_test): fresh CURVE key pairs, and a
// Monitor that reads one socket's events. A Monitor belongs to one test
// thread, like the socket it watches.
#pragma once

#include <zmq.h>

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <optional>
#include <sstream>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "backend/replication/curve.h"

namespace vnvram::replication::testing {

inline CurveKeyPair NewPair() {
  auto p = GenerateCurveKeyPair();
  BOOST_REQUIRE_MESSAGE(p.ok(), p.status().ToString());
  return *p;
}

// The events of one socket (zmq_socket_monitor through an inproc PAIR).
// The socket must outlive the Monitor, which stops the monitoring before
// it closes its reader: closed the other way round, the socket goes on
// queueing events for a reader that is gone.
class Monitor {
 public:
  Monitor(zmq::context_t& ctx, zmq::socket_t& s,
          std::chrono::milliseconds deadline = std::chrono::seconds(10))
      : socket_(s.handle()), deadline_(deadline) {
    static int counter = 0;
    const std::string endpoint = "inproc://vnvram-test-monitor-" + std::to_string(++counter);
    BOOST_REQUIRE(zmq_socket_monitor(socket_, endpoint.c_str(), ZMQ_EVENT_ALL) == 0);
    pair_ = zmq::socket_t(ctx, zmq::socket_type::pair);
    pair_.set(zmq::sockopt::linger, 0);
    pair_.connect(endpoint);
  }
  ~Monitor() { (void)zmq_socket_monitor(socket_, nullptr, 0); }
  Monitor(const Monitor&) = delete;
  Monitor& operator=(const Monitor&) = delete;

  // Waits for `event` (skipping others): its value, or nullopt after the
  // deadline.
  std::optional<int32_t> WaitFor(uint16_t event) {
    const auto deadline = std::chrono::steady_clock::now() + deadline_;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      zmq::pollitem_t item{pair_.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, left);
      if ((item.revents & ZMQ_POLLIN) == 0) continue;
      zmq::message_t head, address;
      BOOST_REQUIRE(pair_.recv(head));
      BOOST_REQUIRE(head.more());
      BOOST_REQUIRE(pair_.recv(address));
      BOOST_REQUIRE(head.size() == 6u);
      uint16_t got = 0;
      int32_t value = 0;
      std::memcpy(&got, head.data(), 2);
      std::memcpy(&value, static_cast<const char*>(head.data()) + 2, 4);
      seen_.push_back(got);
      if (got == event) return value;
    }
  }

  // The events seen so far, for a failure message.
  std::string Seen() const {
    std::string s;
    for (uint16_t e : seen_) s += " 0x" + (std::stringstream() << std::hex << e).str();
    return s;
  }

 private:
  void* socket_;
  std::chrono::milliseconds deadline_;
  zmq::socket_t pair_;
  std::vector<uint16_t> seen_;
};

}  // namespace vnvram::replication::testing
