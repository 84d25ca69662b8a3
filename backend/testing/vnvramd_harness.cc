#include "backend/testing/vnvramd_harness.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <fstream>
#include <sstream>

#include "common/clock.h"
#include "common/endian.h"

#ifndef VNVRAM_BIN_DIR
#error "VNVRAM_BIN_DIR must name the directory holding vnvramd"
#endif

namespace vnvram::backend::testing {

namespace fe = schema::fe;
namespace be = schema::be;
using schema::XenbusState;

namespace {

bool WaitReadable(int fd, const Deadline& d) {
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    const int n = ::poll(&p, 1, d.RemainingMillisForPoll());
    if (n > 0) return true;
    if (n == 0) return false;
    if (errno != EINTR) return false;
  }
}

Result<int> WaitExit(pid_t pid, milliseconds deadline) {
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd >= 0) {
    WaitReadable(pidfd, Deadline(SystemClock::Instance(), deadline));
    ::close(pidfd);
  }
  int status = 0;
  const pid_t r = ::waitpid(pid, &status, pidfd >= 0 ? WNOHANG : 0);
  if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (r == 0) return Status::Timeout("vnvramd did not exit");
  return Status::FromErrno(errno, "waitpid");
}

}  // namespace

// ---------------------------------------------------------------------------

Result<std::unique_ptr<VnvramdProcess>> VnvramdProcess::Start(Options options) {
  std::unique_ptr<VnvramdProcess> p(new VnvramdProcess());
  p->options_ = std::move(options);
  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) return Status::FromErrno(errno, "pipe2");
  const int log_fd =
      ::open(p->options_.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return Status::FromErrno(errno, "open " + p->options_.log_path);
  std::vector<std::string> argv{
      std::string(VNVRAM_BIN_DIR) + "/vnvramd",
      "--platform",
      "sim:" + p->options_.sim_dir + ":" + std::to_string(p->options_.self),
      "--vault-dir",
      p->options_.vault_dir,
      "--log-level",
      "debug",
      "--ready-fd",
      std::to_string(ready[1])};
  for (const auto& a : p->options_.extra_args) argv.push_back(a);
  std::vector<char*> cargv;
  cargv.reserve(argv.size() + 1);
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  std::vector<std::string> envs;
  for (char** e = environ; *e != nullptr; ++e) envs.emplace_back(*e);
  for (const auto& e : p->options_.extra_env) envs.push_back(e);
  std::vector<char*> cenv;
  cenv.reserve(envs.size() + 1);
  for (auto& e : envs) cenv.push_back(e.data());
  cenv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) return Status::FromErrno(errno, "fork");
  if (pid == 0) {
    const int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    ::fcntl(ready[1], F_SETFD, 0);
    ::execve(cargv[0], cargv.data(), cenv.data());
    ::_exit(127);
  }
  ::close(log_fd);
  ::close(ready[1]);
  p->pid_ = pid;
  const Deadline d(SystemClock::Instance(), kWait);
  char byte = 0;
  const bool readable = WaitReadable(ready[0], d);
  const ssize_t got = readable ? ::read(ready[0], &byte, 1) : -1;
  ::close(ready[0]);
  if (got != 1) {
    return Status::Unavailable(
        std::string(readable ? "vnvramd exited before ready" : "vnvramd not ready in time") +
        "; its log:\n" + p->Log());
  }
  return p;
}

VnvramdProcess::~VnvramdProcess() {
  Kill();
}

Status VnvramdProcess::Signal(int sig) {
  if (reaped_ || pid_ <= 0) return Status::FailedPrecondition("vnvramd not running");
  if (::kill(pid_, sig) != 0) return Status::FromErrno(errno, "kill");
  return Status::Ok();
}

Result<int> VnvramdProcess::Stop(milliseconds deadline) {
  VNVRAM_RETURN_IF_ERROR(Signal(SIGTERM));
  auto rc = WaitExit(pid_, deadline);
  if (rc.ok()) reaped_ = true;
  return rc;
}

void VnvramdProcess::Kill() {
  if (reaped_ || pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  reaped_ = true;
}

std::string VnvramdProcess::Log() const {
  std::ifstream f(options_.log_path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// ---------------------------------------------------------------------------

Status Toolstack::Attach(const DeviceSpec& d) {
  const std::string fdir = schema::FrontendDir(d.frontend, d.dev);
  const std::string bdir = schema::BackendDir(d.backend, d.frontend, d.dev);
  const std::vector<platform::PermEntry> fperms = {{d.frontend, platform::Perm::kNone},
                                                   {d.backend, platform::Perm::kRead}};
  const std::vector<platform::PermEntry> bperms = {{d.backend, platform::Perm::kNone},
                                                   {d.frontend, platform::Perm::kRead}};
  const std::string init(schema::XenbusStateValue(XenbusState::kInitialising));
  return platform::RunTransaction(xs_, [&](platform::TxId tx) -> Status {
    VNVRAM_RETURN_IF_ERROR(xs_.Mkdir(tx, fdir));
    VNVRAM_RETURN_IF_ERROR(xs_.SetPermissions(tx, fdir, fperms));
    VNVRAM_RETURN_IF_ERROR(xs_.Mkdir(tx, bdir));
    VNVRAM_RETURN_IF_ERROR(xs_.SetPermissions(tx, bdir, bperms));
    auto fput = [&](std::string_view k, const std::string& v) {
      return xs_.Write(tx, schema::FrontendKey(d.frontend, d.dev, k), v);
    };
    auto bput = [&](std::string_view k, const std::string& v) {
      return xs_.Write(tx, schema::BackendKey(d.backend, d.frontend, d.dev, k), v);
    };
    VNVRAM_RETURN_IF_ERROR(fput(fe::kBackend, bdir));
    VNVRAM_RETURN_IF_ERROR(fput(fe::kBackendId, std::to_string(d.backend)));
    VNVRAM_RETURN_IF_ERROR(fput(fe::kVolume, d.volume.ToString()));
    VNVRAM_RETURN_IF_ERROR(fput(fe::kState, init));
    VNVRAM_RETURN_IF_ERROR(bput(be::kFrontend, fdir));
    VNVRAM_RETURN_IF_ERROR(bput(be::kFrontendId, std::to_string(d.frontend)));
    VNVRAM_RETURN_IF_ERROR(bput(be::kOnline, "1"));
    VNVRAM_RETURN_IF_ERROR(bput(be::kVolume, d.volume.ToString()));
    VNVRAM_RETURN_IF_ERROR(bput(be::kSize, std::to_string(d.size)));
    return bput(be::kState, init);
  });
}

Status Toolstack::BeginDetach(const DeviceSpec& d) {
  return platform::RunTransaction(xs_, [&](platform::TxId tx) -> Status {
    VNVRAM_RETURN_IF_ERROR(
        xs_.Write(tx, schema::BackendKey(d.backend, d.frontend, d.dev, be::kOnline), "0"));
    return xs_.Write(tx, schema::BackendKey(d.backend, d.frontend, d.dev, be::kState),
                     schema::XenbusStateValue(XenbusState::kClosing));
  });
}

Status Toolstack::Remove(const DeviceSpec& d) {
  return platform::RunTransaction(xs_, [&](platform::TxId tx) -> Status {
    VNVRAM_RETURN_IF_ERROR(xs_.Remove(tx, schema::FrontendDir(d.frontend, d.dev)));
    return xs_.Remove(tx, schema::BackendDir(d.backend, d.frontend, d.dev));
  });
}

// ---------------------------------------------------------------------------

namespace {

// Watches `path` for the duration of one wait.
class ScopedWatch {
 public:
  ScopedWatch(platform::XenStore& xs, std::string path, std::string token)
      : xs_(xs), path_(std::move(path)), token_(std::move(token)) {
    status_ = xs_.Watch(path_, token_);
  }
  ~ScopedWatch() {
    if (status_.ok()) (void)xs_.Unwatch(path_, token_);
  }
  const Status& status() const { return status_; }

 private:
  platform::XenStore& xs_;
  std::string path_;
  std::string token_;
  Status status_;
};

std::string NextToken() {
  static std::atomic<uint64_t> n{0};
  return "wait-" + std::to_string(n.fetch_add(1));
}

}  // namespace

Result<std::string> WaitForValue(platform::XenStore& xs, const std::string& path,
                                 const std::function<bool(const std::string&)>& pred,
                                 milliseconds deadline) {
  ScopedWatch watch(xs, path, NextToken());
  VNVRAM_RETURN_IF_ERROR(watch.status());
  const Deadline d(SystemClock::Instance(), deadline);
  std::string last = "<absent>";
  for (;;) {
    auto v = xs.Read(platform::kNoTx, path);
    if (v.ok()) {
      if (pred(*v)) return *v;
      last = *v;
    }
    if (d.Expired()) break;
    if (!WaitReadable(xs.WatchFd(), d)) break;
    for (;;) {
      auto ev = xs.ReadWatch();
      if (!ev.ok()) return ev.status();
      if (!ev->has_value()) break;
    }
  }
  return Status::Timeout(path + ": still '" + last + "'");
}

Result<std::string> WaitForValue(platform::XenStore& xs, const std::string& path,
                                 std::string_view want, milliseconds deadline) {
  return WaitForValue(
      xs, path, [&](const std::string& v) { return v == want; }, deadline);
}

Status WaitForRemoval(platform::XenStore& xs, const std::string& path, milliseconds deadline) {
  ScopedWatch watch(xs, path, NextToken());
  VNVRAM_RETURN_IF_ERROR(watch.status());
  const Deadline d(SystemClock::Instance(), deadline);
  for (;;) {
    auto v = xs.Directory(platform::kNoTx, path);
    if (!v.ok() && v.status().code() == Code::kNotFound) return Status::Ok();
    if (d.Expired() || !WaitReadable(xs.WatchFd(), d)) break;
    for (;;) {
      auto ev = xs.ReadWatch();
      if (!ev.ok()) return ev.status();
      if (!ev->has_value()) break;
    }
  }
  return Status::Timeout(path + " still exists");
}

// ---------------------------------------------------------------------------

Result<std::unique_ptr<TestFrontend>> TestFrontend::Open(const std::string& sim_dir,
                                                         const DeviceSpec& spec) {
  std::unique_ptr<TestFrontend> f(new TestFrontend());
  f->spec_ = spec;
  VNVRAM_ASSIGN_OR_RETURN(f->platform_,
                          platform::OpenSimPlatform(platform::SimOptions{sim_dir, spec.frontend}));
  VNVRAM_ASSIGN_OR_RETURN(f->xs_, f->platform_->OpenXenStore());
  VNVRAM_ASSIGN_OR_RETURN(f->sharer_, f->platform_->OpenGrantSharer());
  VNVRAM_ASSIGN_OR_RETURN(f->mapper_, f->platform_->OpenGrantMapper());
  VNVRAM_ASSIGN_OR_RETURN(f->evtchn_, f->platform_->OpenEventChannels());
  return f;
}

TestFrontend::~TestFrontend() {
  DropTransport();
}

std::string TestFrontend::BeKey(std::string_view key) const {
  return schema::BackendKey(spec_.backend, spec_.frontend, spec_.dev, key);
}
std::string TestFrontend::FeKey(std::string_view key) const {
  return schema::FrontendKey(spec_.frontend, spec_.dev, key);
}

Result<std::string> TestFrontend::WaitBackendState(XenbusState s, milliseconds deadline) {
  return WaitForValue(*xs_, BeKey(be::kState), schema::XenbusStateValue(s), deadline);
}

void TestFrontend::DropTransport() {
  region_.reset();
  dir_.reset();
  client_.reset();
  ring_pages_.reset();
  if (port_) (void)evtchn_->Unbind(*port_);
  port_.reset();
}

Status TestFrontend::Publish(uint32_t order, const TransportOverrides& o) {
  DropTransport();
  VNVRAM_ASSIGN_OR_RETURN(ring_pages_, sharer_->Share(spec_.backend, size_t{1} << order, true));
  VNVRAM_ASSIGN_OR_RETURN(auto port, evtchn_->BindUnbound(spec_.backend));
  port_ = port;
  VNVRAM_ASSIGN_OR_RETURN(client_,
                          frontend::RingClient::Create(ring_pages_->data(), [this] { Kick(); }));
  const auto refs = ring_pages_->refs();
  return platform::RunTransaction(*xs_, [&](platform::TxId tx) -> Status {
    auto put = [&](std::string_view k, const std::string& v) {
      return xs_->Write(tx, FeKey(k), v);
    };
    if (o.ring_page_order) {
      VNVRAM_RETURN_IF_ERROR(put(fe::kRingPageOrder, *o.ring_page_order));
    } else if (order > 0) {
      VNVRAM_RETURN_IF_ERROR(put(fe::kRingPageOrder, std::to_string(order)));
    }
    for (size_t i = 0; i < refs.size(); ++i) {
      const std::string key =
          order == 0 ? std::string(fe::kRingRef) : fe::RingRefN(static_cast<uint32_t>(i));
      std::string value = std::to_string(refs[i]);
      if (i == 0 && o.ring_ref) value = *o.ring_ref;
      VNVRAM_RETURN_IF_ERROR(put(key, value));
    }
    VNVRAM_RETURN_IF_ERROR(
        put(fe::kEventChannel, o.event_channel ? *o.event_channel : std::to_string(port)));
    VNVRAM_RETURN_IF_ERROR(
        put(fe::kProtocol, o.protocol ? *o.protocol : std::string(fe::kProtocolX86_64Abi)));
    return put(fe::kState, std::string(schema::XenbusStateValue(XenbusState::kInitialised)));
  });
}

Status TestFrontend::MapRegion() {
  region_.reset();
  dir_.reset();
  VNVRAM_ASSIGN_OR_RETURN(auto n_s, xs_->Read(platform::kNoTx, BeKey(be::kPageDirRefs)));
  VNVRAM_ASSIGN_OR_RETURN(auto n, ParseU64InRange(n_s, 1, 256, be::kPageDirRefs));
  VNVRAM_ASSIGN_OR_RETURN(auto pages_s, xs_->Read(platform::kNoTx, BeKey(be::kRegionPages)));
  VNVRAM_ASSIGN_OR_RETURN(auto pages, ParseU64InRange(pages_s, 1, 262144, be::kRegionPages));
  if ((pages + 1023) / 1024 != n) return Status::InvalidArgument("page-dir-refs mismatch");
  std::vector<platform::GrantRef> dir_refs;
  for (uint32_t i = 0; i < n; ++i) {
    VNVRAM_ASSIGN_OR_RETURN(auto r_s, xs_->Read(platform::kNoTx, BeKey(be::PageDirRef(i))));
    VNVRAM_ASSIGN_OR_RETURN(auto r, ParseU32(r_s));
    dir_refs.push_back(r);
  }
  VNVRAM_ASSIGN_OR_RETURN(dir_, mapper_->Map(spec_.backend, dir_refs, false));
  std::vector<platform::GrantRef> refs;
  for (uint64_t k = 0; k < pages; ++k) {
    refs.push_back(LoadLE<uint32_t>(dir_->data().data() + 4 * k));
  }
  VNVRAM_ASSIGN_OR_RETURN(region_, mapper_->Map(spec_.backend, refs, true));
  return Status::Ok();
}

Status TestFrontend::SetState(XenbusState s) {
  return xs_->Write(platform::kNoTx, FeKey(fe::kState), schema::XenbusStateValue(s));
}

Status TestFrontend::Connect(uint32_t order) {
  VNVRAM_RETURN_IF_ERROR(Publish(order));
  VNVRAM_RETURN_IF_ERROR(WaitBackendState(XenbusState::kConnected).status());
  VNVRAM_RETURN_IF_ERROR(MapRegion());
  return SetState(XenbusState::kConnected);
}

vnvramif_sring_t* TestFrontend::sring() {
  return reinterpret_cast<vnvramif_sring_t*>(ring_pages_->data().data());
}

void TestFrontend::Kick() {
  if (port_) (void)evtchn_->Notify(*port_);
}

Result<frontend::Completion> TestFrontend::Call(const vnvramif_request& req,
                                                milliseconds deadline) {
  if (!client_) return Status::FailedPrecondition("no ring");
  const Deadline d(SystemClock::Instance(), deadline);
  return client_->Call(req, [&]() -> Status {
    if (!WaitReadable(evtchn_->Fd(), d)) return Status::Timeout("no event from the backend");
    for (;;) {
      auto p = evtchn_->Pending();
      if (!p.ok()) return p.status();
      if (!p->has_value()) break;
      (void)evtchn_->Unmask(**p);
    }
    return Status::Ok();
  });
}

Result<frontend::Completion> TestFrontend::Persist(uint64_t offset, uint64_t length) {
  vnvramif_request r{};
  r.operation = VNVRAMIF_OP_PERSIST;
  r.offset = offset;
  r.length = length;
  return Call(r);
}

}  // namespace vnvram::backend::testing
