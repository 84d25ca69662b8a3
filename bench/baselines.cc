#include "bench/baselines.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <deque>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "common/unique_fd.h"
#include "platform/platform.h"

namespace vnvram::bench {
namespace {

constexpr size_t kAckBytes = 36;  // the replication ACK frame

// The options the replication engine sets on its sockets.
void SetEngineOptions(zmq::socket_t& s) {
  s.set(zmq::sockopt::linger, 0);
  s.set(zmq::sockopt::sndhwm, 100000);
  s.set(zmq::sockopt::rcvhwm, 100000);
  s.set(zmq::sockopt::heartbeat_ivl, 100);
  s.set(zmq::sockopt::heartbeat_timeout, 1000);
}

// A ROUTER on an ephemeral loopback port whose thread answers every frame
// with an acknowledgement, like a replica.
class AckServer {
 public:
  AckServer() : router_(ctx_, zmq::socket_type::router) {
    SetEngineOptions(router_);
    router_.set(zmq::sockopt::router_mandatory, 1);
    router_.bind("tcp://127.0.0.1:*");
    endpoint_ = router_.get(zmq::sockopt::last_endpoint);
    thread_ = std::thread([this] { Run(); });
  }
  ~AckServer() {
    stop_ = true;
    thread_.join();
  }
  zmq::context_t& ctx() { return ctx_; }
  const std::string& endpoint() const { return endpoint_; }

 private:
  void Run() {
    zmq::pollitem_t item{router_.handle(), 0, ZMQ_POLLIN, 0};
    std::vector<std::byte> ack(kAckBytes);
    while (!stop_) {
      zmq::poll(&item, 1, std::chrono::milliseconds(50));
      if ((item.revents & ZMQ_POLLIN) == 0) continue;
      for (;;) {
        zmq::message_t id, body;
        if (!router_.recv(id, zmq::recv_flags::dontwait)) break;
        (void)router_.recv(body, zmq::recv_flags::none);
        router_.send(id, zmq::send_flags::sndmore);
        router_.send(zmq::buffer(ack), zmq::send_flags::none);
      }
    }
  }
  zmq::context_t ctx_;
  zmq::socket_t router_;
  std::string endpoint_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// The client end, with its own ZeroMQ context (its own I/O thread), as the
// primary and the replica are two processes on two hosts.
struct Client {
  explicit Client(AckServer& server) : dealer(ctx, zmq::socket_type::dealer) {
    SetEngineOptions(dealer);
    dealer.set(zmq::sockopt::routing_id, "bench");
    dealer.set(zmq::sockopt::immediate, 1);
    dealer.connect(server.endpoint());
  }
  zmq::context_t ctx;
  zmq::socket_t dealer;
};

void SendFrame(zmq::socket_t& dealer, const std::vector<std::byte>& frame) {
  while (!dealer.send(zmq::buffer(frame), zmq::send_flags::dontwait)) {
    std::this_thread::yield();  // not connected yet (ZMQ_IMMEDIATE)
  }
}

// Warm-up, then samples until `run` has passed.
template <typename Fn>
void RunFor(Duration run, Samples& out, Fn&& one) {
  for (int i = 0; i < 200; ++i) one();
  const auto end = BenchClock::now() + run;
  while (BenchClock::now() < end) {
    const auto t0 = BenchClock::now();
    one();
    out.Add(MicrosSince(t0));
  }
}

Status ReadFull(int fd, std::byte* p, size_t n) {
  while (n > 0) {
    const ssize_t r = ::read(fd, p, n);
    if (r <= 0)
      return r == 0 ? Status::Unavailable("peer closed") : Status::FromErrno(errno, "read");
    p += r;
    n -= static_cast<size_t>(r);
  }
  return Status::Ok();
}

Status WriteFull(int fd, const std::byte* p, size_t n) {
  while (n > 0) {
    const ssize_t r = ::write(fd, p, n);
    if (r < 0) return Status::FromErrno(errno, "write");
    p += r;
    n -= static_cast<size_t>(r);
  }
  return Status::Ok();
}

}  // namespace

Result<Samples> ZmqRoundTrip(size_t size, Duration run, bool spin) {
  AckServer server;
  Client client(server);
  zmq::socket_t& dealer = client.dealer;
  const std::vector<std::byte> frame(size + 64, std::byte{0x5a});  // + REPLICATE header
  Samples s;
  RunFor(run, s, [&] {
    SendFrame(dealer, frame);
    zmq::message_t reply;
    bool got = false;
    if (spin) {
      const auto spin_end = BenchClock::now() + std::chrono::microseconds(300);
      while (!got && BenchClock::now() < spin_end) {
        got = dealer.recv(reply, zmq::recv_flags::dontwait).has_value();
        if (!got) std::this_thread::yield();
      }
    }
    if (!got) (void)dealer.recv(reply, zmq::recv_flags::none);
  });
  return s;
}

Result<double> ZmqPipelined(size_t size, size_t window, Duration run) {
  AckServer server;
  Client client(server);
  zmq::socket_t& dealer = client.dealer;
  const std::vector<std::byte> frame(size + 64, std::byte{0x5a});
  size_t in_flight = 0;
  uint64_t done = 0;
  auto one_ack = [&] {
    zmq::message_t reply;
    (void)dealer.recv(reply, zmq::recv_flags::none);
    --in_flight;
  };
  for (int i = 0; i < 200; ++i) {  // warm-up
    SendFrame(dealer, frame);
    ++in_flight;
    if (in_flight >= window) one_ack();
  }
  while (in_flight > 0) one_ack();
  const auto t0 = BenchClock::now();
  const auto end = t0 + run;
  while (BenchClock::now() < end) {
    SendFrame(dealer, frame);
    ++in_flight;
    if (in_flight >= window) {
      one_ack();
      ++done;
    }
  }
  while (in_flight > 0) {
    one_ack();
    ++done;
  }
  return static_cast<double>(done) / (MicrosSince(t0) / 1e6);
}

Result<Samples> TcpRoundTrip(size_t size, Duration run) {
  UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (listener.get() < 0) return Status::FromErrno(errno, "socket");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      ::listen(listener.get(), 1) != 0 ||
      ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    return Status::FromErrno(errno, "bind/listen on 127.0.0.1");
  }
  UniqueFd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (::connect(client.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    return Status::FromErrno(errno, "connect");
  }
  UniqueFd server(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (server.get() < 0) return Status::FromErrno(errno, "accept");
  const int one = 1;
  ::setsockopt(client.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  ::setsockopt(server.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  std::thread echo([&, fd = server.get()] {
    std::vector<std::byte> in(size + 64);
    const std::vector<std::byte> ack(kAckBytes);
    while (ReadFull(fd, in.data(), in.size()).ok() && WriteFull(fd, ack.data(), ack.size()).ok()) {
    }
  });
  const std::vector<std::byte> frame(size + 64, std::byte{0x5a});
  std::vector<std::byte> ack(kAckBytes);
  Samples s;
  Status err = Status::Ok();
  RunFor(run, s, [&] {
    if (!err.ok()) return;
    err = WriteFull(client.get(), frame.data(), frame.size());
    if (err.ok()) err = ReadFull(client.get(), ack.data(), ack.size());
  });
  ::shutdown(client.get(), SHUT_RDWR);
  echo.join();
  if (!err.ok()) return err;
  return s;
}

Result<Samples> WriteFdatasync(const std::string& dir, size_t size, size_t count) {
  const std::string path = dir + "/fdatasync.bench";
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (fd.get() < 0) return Status::FromErrno(errno, "open " + path);
  const std::vector<char> buf(size, 'x');
  Samples s;
  Status err = Status::Ok();
  for (size_t i = 0; i < count + 10 && err.ok(); ++i) {
    const auto t0 = BenchClock::now();
    if (::pwrite(fd.get(), buf.data(), size, static_cast<off_t>((i % 256) * size)) < 0 ||
        ::fdatasync(fd.get()) != 0) {
      err = Status::FromErrno(errno, "pwrite/fdatasync " + path);
    } else if (i >= 10) {
      s.Add(MicrosSince(t0));
    }
  }
  ::unlink(path.c_str());
  if (!err.ok()) return err;
  return s;
}

double MemcpyBandwidth(size_t bytes, Duration run) {
  std::vector<std::byte> src(bytes, std::byte{1});
  std::vector<std::byte> dst(bytes, std::byte{2});
  std::memcpy(dst.data(), src.data(), bytes);  // warm
  uint64_t copied = 0;
  const auto t0 = BenchClock::now();
  const auto end = t0 + run;
  do {
    std::memcpy(dst.data(), src.data(), bytes);
    copied += bytes;
    src[copied % bytes] = static_cast<std::byte>(copied);  // keep the copies honest
  } while (BenchClock::now() < end);
  volatile std::byte sink = dst[bytes / 2];
  (void)sink;
  return static_cast<double>(copied) / (MicrosSince(t0) / 1e6);
}

Result<Samples> SimEventChannelRoundTrip(const std::string& sim_dir, Duration run, bool spin) {
  VNVRAM_ASSIGN_OR_RETURN(auto p0, platform::OpenPlatform("sim:" + sim_dir + ":0"));
  VNVRAM_ASSIGN_OR_RETURN(auto p1, platform::OpenPlatform("sim:" + sim_dir + ":1"));
  VNVRAM_ASSIGN_OR_RETURN(auto e0, p0->OpenEventChannels());
  VNVRAM_ASSIGN_OR_RETURN(auto e1, p1->OpenEventChannels());
  VNVRAM_ASSIGN_OR_RETURN(const platform::EvtchnPort port0, e0->BindUnbound(1));
  VNVRAM_ASSIGN_OR_RETURN(const platform::EvtchnPort port1, e1->BindInterdomain(0, port0));
  // Waits for one event on `e`, then unmasks it: as the ring's two ends do.
  auto wait_one = [spin](platform::EventChannels& e) -> Status {
    const auto spin_end = BenchClock::now() + std::chrono::microseconds(spin ? 50 : 0);
    while (BenchClock::now() < spin_end) {
      VNVRAM_ASSIGN_OR_RETURN(auto p, e.Pending());
      if (p) return e.Unmask(*p);
      std::this_thread::yield();
    }
    for (;;) {
      pollfd pfd{e.Fd(), POLLIN, 0};
      if (::poll(&pfd, 1, 5000) <= 0) return Status::Timeout("event channel round trip");
      VNVRAM_ASSIGN_OR_RETURN(auto p, e.Pending());
      if (p) return e.Unmask(*p);
    }
  };
  std::atomic<bool> stop{false};
  std::thread answer([&] {
    while (!stop.load(std::memory_order_relaxed)) {
      if (!wait_one(*e0).ok()) continue;
      (void)e0->Notify(port0);
    }
  });
  Samples s;
  Status err = Status::Ok();
  RunFor(run, s, [&] {
    if (!err.ok()) return;
    err = e1->Notify(port1);
    if (err.ok()) err = wait_one(*e1);
  });
  stop = true;
  (void)e1->Notify(port1);  // wake the answering thread
  answer.join();
  (void)e1->Unbind(port1);
  (void)e0->Unbind(port0);
  if (!err.ok()) return err;
  return s;
}

}  // namespace vnvram::bench
