// LinkProxy: a fault-injecting TCP forwarder for one directed replication
// link (host X dialling host Y): X's cluster file names the proxy's port as
// Y's endpoint, the proxy forwards to Y's real port. Faults: a partition
// (blackhole: bytes are held in both directions, new connections are
// accepted and held, nothing is refused or reset, as a cut cable) and a
// delay added to every chunk it forwards (a slow link). Heal resumes the
// held bytes. One thread per proxy; the setters are thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <thread>

#include "common/result.h"

namespace vnvram::testing {

class LinkProxy {
 public:
  // Listens on 127.0.0.1 (an ephemeral port) and forwards to
  // 127.0.0.1:`upstream_port`.
  static Result<std::unique_ptr<LinkProxy>> Start(uint16_t upstream_port);
  ~LinkProxy();
  LinkProxy(const LinkProxy&) = delete;
  LinkProxy& operator=(const LinkProxy&) = delete;

  uint16_t port() const { return port_; }
  // Partition (true) or heal (false).
  void SetBlackhole(bool on);
  // Delay added to each forwarded chunk; zero forwards at once.
  void SetDelay(std::chrono::milliseconds delay);

 private:
  LinkProxy() = default;
  void Run();
  void Wake();

  uint16_t upstream_port_ = 0;
  uint16_t port_ = 0;
  int listen_fd_ = -1;
  int wake_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<bool> blackhole_{false};
  std::atomic<int64_t> delay_ms_{0};
  std::thread thread_;
};

}  // namespace vnvram::testing
