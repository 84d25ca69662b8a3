// ZapHandler: the ZAP (RFC 27) authenticator of one ZeroMQ context; owns a
// REP socket on inproc://zeromq.zap.01 and the thread answering it (listed
// CURVE keys admitted with User-Id = host id). Start/destructor: the owning
// thread; admitted()/refused(): any thread; RefusedFn: the handler thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <zmq.hpp>

#include "common/result.h"

namespace vnvram::replication {

// The address libzmq binds its ZAP requests to (one handler per context).
inline constexpr std::string_view kZapEndpoint = "inproc://zeromq.zap.01";

// Order of use on a context:
//   1. ZapHandler::Start(ctx, keys)             (before any CURVE server binds)
//   2. ConfigureCurveServer(router), bind, ...  (curve.h)
//   3. close the CURVE sockets, destroy the ZapHandler, then close the context.
// A CURVE server configured by ConfigureCurveServer enforces its ZAP domain:
// while no handler is bound, every client is refused, never admitted
// unauthenticated. If the context is shut down or terminated while the
// handler runs, the handler's thread sees ETERM, closes its socket and ends,
// so the context's termination does not wait on it; the destructor then only
// joins.
//
// Answers, one per request (status code, text, User-Id):
//   200 "OK" host-id   mechanism CURVE, domain kZapDomain, 32-byte key listed
//   400 <reason> ""    an unknown key, another mechanism (NULL, PLAIN, ...)
//                      or domain, or a malformed request (version not "1.0",
//                      wrong frame count, key not 32 bytes)
// Every refusal is counted, logged once (one warn line: the key's first 8
// Z85 characters, the peer address, the reason) and passed to the
// RefusedFn. libzmq 4.3 does not retry a client refused by ZAP: the DEALER's
// connection stays down until its owner reconnects it.
class ZapHandler {
 public:
  // The presented public key in Z85 (empty when the request carried none)
  // and the peer's address as libzmq reports it (the IP, no port).
  // Exceptions are caught and logged.
  using RefusedFn = std::function<void(std::string_view key_z85, std::string_view address)>;

  // Binds kZapEndpoint on `ctx` and starts the thread. `allowed_key_to_host`
  // maps Z85 public keys (cluster file hosts[].public-key) to host ids.
  // kInvalidArgument for a bad key or host id, kAlreadyExists when another
  // handler is bound on `ctx`, kUnavailable when `ctx` is closed. Once a
  // handler is destroyed, a new one (say, for a changed cluster file) can
  // start on the same context at once.
  static Result<std::unique_ptr<ZapHandler>> Start(
      zmq::context_t& ctx, const std::map<std::string, std::string>& allowed_key_to_host,
      RefusedFn on_refused = {});

  // Stops and joins the thread; see "Order of use" above.
  ~ZapHandler();
  ZapHandler(const ZapHandler&) = delete;
  ZapHandler& operator=(const ZapHandler&) = delete;

  // Requests answered 200 / 400 so far.
  uint64_t admitted() const { return admitted_.load(std::memory_order_acquire); }
  uint64_t refused() const { return refused_.load(std::memory_order_acquire); }

 private:
  struct Request;
  ZapHandler(zmq::socket_t socket, int stop_fd, std::map<std::string, std::string> allowed,
             RefusedFn on_refused);
  void Run();
  // Receives and answers one request; false when the socket is unusable.
  bool ServeOne();
  // The reason to refuse `req`, or "" with *host set to the admitted host.
  std::string Judge(const Request& req, const std::string** host) const;
  bool Reply(const Request& req, std::string_view code, std::string_view text,
             std::string_view user_id);

  // Constant after construction.
  const std::map<std::string, std::string> allowed_;  // 32 raw key bytes -> host id
  const RefusedFn on_refused_;
  const int stop_fd_;  // eventfd; written by the destructor

  // Used only by the handler thread once it runs.
  zmq::socket_t socket_;

  std::atomic<uint64_t> admitted_{0};
  std::atomic<uint64_t> refused_{0};
  std::thread thread_;
};

// The host id the ZapHandler bound to the connection `msg` arrived on (its
// "User-Id" property). kPermissionDenied when the message has none, i.e. its
// connection was not admitted by a ZapHandler: the engine must then refuse
// the session.
Result<std::string> AdmittedHostId(const zmq::message_t& msg);

}  // namespace vnvram::replication
