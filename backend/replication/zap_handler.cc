#include "backend/replication/zap_handler.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <exception>
#include <system_error>
#include <vector>

#include "backend/replication/cluster_config.h"
#include "backend/replication/curve.h"
#include "backend/replication/host_id.h"
#include "common/log.h"
#include "common/parse.h"

namespace vnvram::replication {

namespace {

constexpr size_t kRawKeySize = 32;
// A request has 6 frames plus the mechanism's credentials (1 for CURVE, 2
// for PLAIN); more are drained but not kept.
constexpr size_t kMaxKeptFrames = 8;

const log::Context& Log() {
  static const log::Context context("zap");
  return context;
}

std::string Quote(std::string_view s) {
  return QuoteForError(s, 40);
}

std::string Z85(std::string_view raw) {
  std::array<char, kRawKeySize * 5 / 4 + 1> out{};
  if (raw.size() != kRawKeySize ||
      zmq_z85_encode(out.data(), reinterpret_cast<const uint8_t*>(raw.data()), raw.size()) ==
          nullptr) {
    return {};
  }
  return std::string(out.data());
}

}  // namespace

struct ZapHandler::Request {
  std::vector<std::string> frames;  // at most kMaxKeptFrames
  size_t frame_count = 0;           // all frames received
  std::string_view Frame(size_t i) const {
    return i < frames.size() ? std::string_view(frames[i]) : std::string_view();
  }
  std::string_view request_id() const { return Frame(1); }
  std::string_view address() const { return Frame(3); }
};

Result<std::unique_ptr<ZapHandler>> ZapHandler::Start(
    zmq::context_t& ctx, const std::map<std::string, std::string>& allowed_key_to_host,
    RefusedFn on_refused) {
  std::map<std::string, std::string> allowed;
  for (const auto& [key, host] : allowed_key_to_host) {
    if (Status s = CheckCurveKey(key); !s.ok()) {
      return Status::InvalidArgument("allowed key " + Quote(key) + " (host " + Quote(host) +
                                     "): " + s.message());
    }
    if (!IsValidHostId(host)) {
      return Status::InvalidArgument("host id " + Quote(host) + " of allowed key " + Quote(key) +
                                     ": not a valid host id");
    }
    std::array<uint8_t, kRawKeySize> raw{};
    if (zmq_z85_decode(raw.data(), key.c_str()) == nullptr) {
      return Status::InvalidArgument("allowed key " + Quote(key) + ": not decodable Z85");
    }
    allowed.emplace(std::string(raw.begin(), raw.end()), host);
  }

  if (ctx.handle() == nullptr) return Status::Unavailable("ZAP handler: the context is closed");
  zmq::socket_t socket;
  try {
    socket = zmq::socket_t(ctx, zmq::socket_type::rep);
  } catch (const zmq::error_t& e) {
    if (e.num() == ETERM) return Status::Unavailable("ZAP handler: the context is terminated");
    return Status::FromErrno(e.num(), "ZAP handler: create REP socket");
  }
  const int linger = 0;
  if (zmq_setsockopt(socket.handle(), ZMQ_LINGER, &linger, sizeof linger) != 0) {
    return Status::FromErrno(zmq_errno(), "ZAP handler: zmq_setsockopt ZMQ_LINGER");
  }
  if (zmq_bind(socket.handle(), std::string(kZapEndpoint).c_str()) != 0) {
    const int err = zmq_errno();
    if (err == EADDRINUSE) {
      return Status::AlreadyExists("ZAP handler: " + std::string(kZapEndpoint) +
                                   " is already bound on this context (another ZAP handler)");
    }
    return Status::FromErrno(err, "ZAP handler: bind " + std::string(kZapEndpoint));
  }
  const int stop_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd < 0) return Status::FromErrno(errno, "ZAP handler: eventfd");

  std::unique_ptr<ZapHandler> handler(
      new ZapHandler(std::move(socket), stop_fd, std::move(allowed), std::move(on_refused)));
  try {
    handler->thread_ = std::thread(&ZapHandler::Run, handler.get());
  } catch (const std::system_error& e) {
    return Status::FromErrno(e.code().value(), "ZAP handler: start thread");
  }
  return handler;
}

ZapHandler::ZapHandler(zmq::socket_t socket, int stop_fd,
                       std::map<std::string, std::string> allowed, RefusedFn on_refused)
    : allowed_(std::move(allowed)),
      on_refused_(std::move(on_refused)),
      stop_fd_(stop_fd),
      socket_(std::move(socket)) {}

ZapHandler::~ZapHandler() {
  if (thread_.joinable()) {
    const uint64_t one = 1;
    // An eventfd write of 1 cannot block or fail short of overflow.
    while (::write(stop_fd_, &one, sizeof one) < 0 && errno == EINTR) {
    }
    thread_.join();
  }
  ::close(stop_fd_);
}

void ZapHandler::Run() {
  try {
    std::array<zmq_pollitem_t, 2> items{};
    items[0].socket = socket_.handle();
    items[0].events = ZMQ_POLLIN;
    items[1].fd = stop_fd_;
    items[1].events = ZMQ_POLLIN;
    while (true) {
      if (zmq_poll(items.data(), static_cast<int>(items.size()), -1) < 0) {
        const int err = zmq_errno();
        if (err == EINTR) continue;
        if (err != ETERM)
          Log().Error("poll failed: {}; no more connections are admitted", zmq_strerror(err));
        break;
      }
      if ((items[1].revents & ZMQ_POLLIN) != 0) break;
      if ((items[0].revents & ZMQ_POLLIN) != 0 && !ServeOne()) break;
    }
  } catch (const std::exception& e) {
    Log().Error("handler stopped: {}; no more connections are admitted", e.what());
  } catch (...) {
    Log().Error("handler stopped by an unknown exception; no more connections are admitted");
  }
  // Unbound first (synchronous for inproc) so that a new handler can bind
  // on this context at once; closed here, on this thread, so that a context
  // being terminated never waits for the owner to destroy the handler.
  (void)zmq_unbind(socket_.handle(), std::string(kZapEndpoint).c_str());
  socket_.close();
}

bool ZapHandler::ServeOne() {
  Request req;
  bool more = true;
  while (more) {
    zmq::message_t part;
    const int flags = req.frame_count == 0 ? ZMQ_DONTWAIT : 0;
    if (zmq_msg_recv(part.handle(), socket_.handle(), flags) < 0) {
      const int err = zmq_errno();
      if (err == EAGAIN && req.frame_count == 0) return true;  // nothing after all
      if (err == EINTR) continue;
      if (err != ETERM) Log().Error("receive failed: {}", zmq_strerror(err));
      return false;
    }
    ++req.frame_count;
    if (req.frames.size() < kMaxKeptFrames) req.frames.emplace_back(part.to_string_view());
    more = part.more();
  }

  const std::string* host = nullptr;
  const std::string reason = Judge(req, &host);
  if (host != nullptr) {
    admitted_.fetch_add(1, std::memory_order_acq_rel);
    if (!Reply(req, "200", "OK", *host)) return false;
    Log().Debug("admitted host {} (key {}...) from {}", *host, Z85(req.Frame(6)).substr(0, 8),
                Quote(req.address()));
    return true;
  }

  refused_.fetch_add(1, std::memory_order_acq_rel);
  const bool replied = Reply(req, "400", reason, "");
  // The key, when the request carries one of the right size.
  const std::string key_z85 =
      req.frame_count == 7 && req.Frame(5) == "CURVE" ? Z85(req.Frame(6)) : std::string();
  Log().Warn("refused key {} from {}: {}",
             key_z85.empty() ? std::string("(none)") : key_z85.substr(0, 8) + "...",
             Quote(req.address()), reason);
  if (on_refused_) {
    try {
      on_refused_(key_z85, req.address());
    } catch (const std::exception& e) {
      Log().Error("refusal callback threw: {}", e.what());
    } catch (...) {
      Log().Error("refusal callback threw an unknown exception");
    }
  }
  return replied;
}

std::string ZapHandler::Judge(const Request& req, const std::string** host) const {
  // Frames: version, request id, domain, address, identity, mechanism,
  // credentials... (RFC 27).
  if (req.frame_count < 6) {
    return "malformed request: " + std::to_string(req.frame_count) + " frames, expected 6 or more";
  }
  if (req.Frame(0) != "1.0") {
    return "malformed request: version " + Quote(req.Frame(0)) + ", expected \"1.0\"";
  }
  if (req.Frame(5) != "CURVE") {
    return "mechanism " + Quote(req.Frame(5)) + ", only CURVE is admitted";
  }
  if (req.Frame(2) != kZapDomain) {
    return "ZAP domain " + Quote(req.Frame(2)) + ", expected " + Quote(kZapDomain);
  }
  if (req.frame_count != 7) {
    return "malformed CURVE request: " + std::to_string(req.frame_count) + " frames, expected 7";
  }
  const std::string_view key = req.Frame(6);
  if (key.size() != kRawKeySize) {
    return "malformed CURVE request: key of " + std::to_string(key.size()) + " bytes, expected 32";
  }
  const auto it = allowed_.find(std::string(key));
  if (it == allowed_.end()) return "public key not in the cluster file";
  *host = &it->second;
  return {};
}

bool ZapHandler::Reply(const Request& req, std::string_view code, std::string_view text,
                       std::string_view user_id) {
  // Version, request id, status code, status text, user id, metadata.
  const std::string_view frames[] = {"1.0", req.request_id(), code, text, user_id, ""};
  const size_t n = std::size(frames);
  for (size_t i = 0; i < n; ++i) {
    // The ZAP pipe of a session has no high-water mark: a send never
    // blocks. A failed send leaves REP unable to go on: the handler stops
    // and, with no handler bound, CURVE servers refuse every client.
    zmq::message_t part(frames[i].data(), frames[i].size());
    if (zmq_msg_send(part.handle(), socket_.handle(), i + 1 < n ? ZMQ_SNDMORE : 0) < 0) {
      const int err = zmq_errno();
      if (err != ETERM) Log().Error("send failed: {}", zmq_strerror(err));
      return false;
    }
  }
  return true;
}

Result<std::string> AdmittedHostId(const zmq::message_t& msg) {
  const char* user_id = zmq_msg_gets(msg.handle(), "User-Id");
  if (user_id == nullptr || *user_id == '\0') {
    return Status::PermissionDenied(
        "message carries no User-Id: its connection was not admitted by the ZAP handler");
  }
  return std::string(user_id);
}

}  // namespace vnvram::replication
