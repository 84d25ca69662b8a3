#include "backend/ring_worker.h"

#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <exception>

#include "common/log.h"

namespace vnvram::backend {

Result<std::unique_ptr<RingWorker>> RingWorker::Start(Params params) {
  if (!params.ring || !params.evtchn || params.region == nullptr) {
    return Status::InvalidArgument("ring worker: missing ring, event channel or region");
  }
  std::unique_ptr<RingWorker> w(new RingWorker(std::move(params)));
  if (w->p_.copy_mapper != nullptr) {
    w->segment_mapper_ = std::make_unique<GrantSegmentMapper>(*w->p_.copy_mapper, w->p_.frontend);
  }
  platform::EventChannels* evtchn = w->p_.evtchn.get();
  const platform::EvtchnPort port = w->p_.port;
  RingServerOptions options;
  options.log_prefix = w->p_.log_prefix;
  auto server = RingServer::Create(
      w->p_.ring->data(), w->p_.region->bytes(), w->p_.region->sink(), w->segment_mapper_.get(),
      [evtchn, port] { (void)evtchn->Notify(port); }, options);
  if (!server.ok()) return server.status();
  w->server_ = std::move(server).value();
  w->stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (w->stop_fd_ < 0) return Status::FromErrno(errno, "eventfd");
  w->thread_ = std::thread([raw = w.get()] { raw->Run(); });
  return w;
}

RingWorker::~RingWorker() {
  if (thread_.joinable()) {
    const uint64_t one = 1;
    while (::write(stop_fd_, &one, sizeof(one)) < 0 && errno == EINTR) {
    }
    thread_.join();
  }
  if (stop_fd_ >= 0) ::close(stop_fd_);
  // The server reads the ring; drop it before the mapping goes.
  server_.reset();
  if (p_.evtchn) (void)p_.evtchn->Unbind(p_.port);
  p_.evtchn.reset();
  p_.ring.reset();
}

bool RingWorker::fenced() const {
  return (server_ && server_->fenced()) || failed_.load(std::memory_order_acquire);
}

Status RingWorker::fence_status() const {
  if (server_ && server_->fenced()) return server_->fence_status();
  std::lock_guard<std::mutex> lock(mu_);
  return failure_;
}

void RingWorker::Run() {
  Status s;
  try {
    s = Loop();
  } catch (const std::exception& e) {
    s = Status::Internal(std::string("ring worker: ") + e.what());
  } catch (...) {
    s = Status::Internal("ring worker: unknown exception");
  }
  if (!s.ok()) {
    if (!(server_ && server_->fenced())) {
      std::lock_guard<std::mutex> lock(mu_);
      failure_ = s;
      failed_.store(true, std::memory_order_release);
    }
    if (p_.on_fence) p_.on_fence();
  }
}

// Waking a thread blocked in poll(2) costs tens of microseconds on an idle
// virtual CPU, about as much as the request itself: a frontend that sends
// its next request soon after the last answer finds the worker awake.
bool RingWorker::SpinForRequests() {
  const auto end = std::chrono::steady_clock::now() + p_.spin;
  do {
    if (server_->RequestsWaiting()) return true;
    sched_yield();
  } while (std::chrono::steady_clock::now() < end);
  return false;
}

Status RingWorker::Loop() {
  const log::Context log(p_.log_prefix);
  // Requests may have been queued before we bound the channel: serve once.
  bool more = true;
  for (;;) {
    pollfd fds[2] = {{stop_fd_, POLLIN, 0}, {p_.evtchn->Fd(), POLLIN, 0}};
    const int n = ::poll(fds, 2, more ? 0 : -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "poll");
    }
    if (fds[0].revents != 0) return Status::Ok();
    if (fds[1].revents != 0) {
      // Take every pending port (only ours is bound on this handle), unmask
      // it, then serve: an event that arrives while we serve is not lost.
      for (;;) {
        auto pending = p_.evtchn->Pending();
        if (!pending.ok()) return pending.status().WithContext("event channel");
        if (!pending->has_value()) break;
        (void)p_.evtchn->Unmask(**pending);
      }
      more = true;
    }
    if (!more) continue;
    auto progress = server_->Process();
    if (!progress.ok()) {
      log.Error("ring fenced: {}", progress.status().ToString());
      return progress.status();
    }
    more = *progress == RingServer::Progress::kMorePending;
    if (!more && p_.spin.count() > 0) more = SpinForRequests();
  }
}

}  // namespace vnvram::backend
