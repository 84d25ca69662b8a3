// NbdServer: accepts NBD clients on its listening sockets and serves each
// connection with an NbdSession on a thread of its own, up to a limit of
// connections (more are closed at once). It stops on a signal fd or Stop():
// it stops accepting, every session finishes the request in hand (a frame
// still arriving gets a short grace) and ends, and Run() joins them all.
// Thread-safety: Run() on one thread; Stop() and the counters from any.
#pragma once

#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "frontd/block_export.h"
#include "frontd/nbd_session.h"

namespace vnvram::frontd {

struct ServerConfig {
  SessionConfig session;
  size_t max_connections = 64;
};

class NbdServer {
 public:
  static Result<std::unique_ptr<NbdServer>> Create(BlockExport& exp, ServerConfig config);
  // Stop(), then joins whatever still runs.
  ~NbdServer();
  NbdServer(const NbdServer&) = delete;
  NbdServer& operator=(const NbdServer&) = delete;

  // Takes ownership of a listening socket (non-blocking); `tcp` sets
  // TCP_NODELAY on its connections. Before Run().
  void AddListener(int fd, bool tcp);
  // Serves until `signal_fd` (a signalfd, or -1) is readable or Stop() is
  // called, then closes the listeners, ends every session and joins them.
  Status Run(int signal_fd);
  // Idempotent; any thread.
  void Stop();

  uint64_t accepted() const { return accepted_.load(); }
  uint64_t refused() const { return refused_.load(); }
  size_t active() const;

 private:
  struct Listener {
    UniqueFd fd;
    bool tcp;
    explicit Listener(int f, bool t) : fd(f), tcp(t) {}
  };
  struct Connection {
    uint64_t id = 0;
    std::thread thread;
    std::atomic<bool> done{false};
  };

  NbdServer(BlockExport& exp, ServerConfig config, int stop_fd, int reap_fd);
  void AcceptFrom(const Listener& l, bool* pause);
  void Serve(Connection* c, int fd, const std::string& peer);
  void Reap(bool all);

  BlockExport& export_;
  const ServerConfig config_;
  UniqueFd stop_fd_;  // eventfd: readable once stopping (never read)
  UniqueFd reap_fd_;  // eventfd: a session ended
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::list<std::unique_ptr<Connection>> connections_;  // Run()'s thread only
  uint64_t next_id_ = 0;
  std::atomic<uint64_t> accepted_{0};
  std::atomic<uint64_t> refused_{0};
  std::atomic<size_t> active_{0};
};

}  // namespace vnvram::frontd
