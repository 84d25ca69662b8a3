#include "backend/daemon.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <filesystem>

#include "common/clock.h"
#include "common/log.h"
#include "common/service_notify.h"
#include "xenstore-schema/schema.h"

namespace vnvram::backend {

namespace {

constexpr std::string_view kBackendToken = "vnvramd-backend";
constexpr std::string_view kVaultToken = "vnvramd-vault";
constexpr std::string_view kFrontendTokenPrefix = "vnvramd-fe:";

std::vector<std::string_view> Split(std::string_view s) {
  std::vector<std::string_view> out;
  while (!s.empty()) {
    const size_t slash = s.find('/');
    out.push_back(s.substr(0, slash));
    if (slash == std::string_view::npos) break;
    s.remove_prefix(slash + 1);
  }
  return out;
}

}  // namespace

Result<std::unique_ptr<Daemon>> Daemon::Create(DaemonConfig config,
                                               std::unique_ptr<platform::Platform> platform) {
  std::unique_ptr<Daemon> d(new Daemon(std::move(config), std::move(platform)));
  VNVRAM_RETURN_IF_ERROR(d->Open());
  return d;
}

Daemon::~Daemon() {
  devices_.clear();
  env_.reset();
  volumes_.reset();
  replication_.reset();
  if (wake_fd_ >= 0) ::close(wake_fd_);
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

Status Daemon::Open() {
  self_ = platform_->self_domid();
  std::error_code ec;
  std::filesystem::create_directories(config_.vault_dir, ec);
  if (ec)
    return Status::IoError("create vault directory " + config_.vault_dir + ": " + ec.message());
  // One daemon per vault directory: two would overwrite each other's vaults.
  const std::string lock_path = config_.vault_dir + "/.vnvramd.lock";
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd_ < 0) return Status::FromErrno(errno, "open " + lock_path);
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return Status::FailedPrecondition("another vnvramd is using the vault directory " +
                                        config_.vault_dir);
    }
    return Status::FromErrno(errno, "lock " + lock_path);
  }
  auto xs = platform_->OpenXenStore();
  if (!xs.ok()) return xs.status().WithContext("open xenstore");
  xs_ = std::move(xs).value();
  auto sharer = platform_->OpenGrantSharer();
  if (!sharer.ok()) return sharer.status().WithContext("open grant sharer");
  sharer_ = std::move(sharer).value();
  auto mapper = platform_->OpenGrantMapper();
  if (!mapper.ok()) return mapper.status().WithContext("open grant mapper");
  mapper_ = std::move(mapper).value();
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) return Status::FromErrno(errno, "eventfd");
  if (!config_.cluster_file.empty()) {
    auto r = ReplicationControl::Start(config_, *xs_, self_, [this] { Wake(); });
    if (!r.ok()) return r.status().WithContext("replication");
    replication_ = std::move(r).value();
  }
  volumes_ = std::make_unique<VolumeRegistry>(*sharer_, config_.vault_dir, replication_.get());
  Activator activate;
  if (replication_) {
    activate = [this](const Uuid& volume, bool force, ActivationDone done) {
      return replication_->Activate(volume, force, std::move(done));
    };
  }
  env_ = std::make_unique<DeviceEnv>(DeviceEnv{*platform_, *xs_, *mapper_, *volumes_, config_,
                                               [this] { Wake(); }, std::move(activate)});
  return Status::Ok();
}

void Daemon::Wake() {
  const uint64_t one = 1;
  while (::write(wake_fd_, &one, sizeof(one)) < 0 && errno == EINTR) {
  }
}

Status Daemon::PublishDaemonKeys(std::string_view status) {
  namespace dk = schema::daemon;
  return platform::RunTransaction(*xs_, [&](platform::TxId tx) -> Status {
    VNVRAM_RETURN_IF_ERROR(xs_->Write(tx, schema::DaemonKey(self_, dk::kHostId), config_.host_id));
    VNVRAM_RETURN_IF_ERROR(
        xs_->Write(tx, schema::DaemonKey(self_, dk::kPid), std::to_string(::getpid())));
    VNVRAM_RETURN_IF_ERROR(xs_->Write(tx, schema::DaemonKey(self_, dk::kVersion), kVnvramdVersion));
    return xs_->Write(tx, schema::DaemonKey(self_, dk::kStatus), status);
  });
}

std::string Daemon::FrontendWatchToken(DomId f, DevId dev) const {
  return std::string(kFrontendTokenPrefix) + std::to_string(f) + ":" + std::to_string(dev);
}

void Daemon::Reconcile(DomId f, DevId dev) {
  const DeviceKey key{f, dev};
  auto it = devices_.find(key);
  auto dir = xs_->Directory(platform::kNoTx, schema::BackendDir(self_, f, dev));
  if (!dir.ok()) {
    if (dir.status().code() != Code::kNotFound) {
      spdlog::warn("dom {} dev {}: cannot list the backend directory: {}", f, dev,
                   dir.status().ToString());
      return;
    }
    if (it != devices_.end()) {
      (void)xs_->Unwatch(schema::FrontendDir(f, dev), FrontendWatchToken(f, dev));
      it->second->Remove();
      devices_.erase(it);
    }
    return;
  }
  if (it == devices_.end()) {
    // A device is complete when the toolstack's transaction is: state is
    // one of the keys it writes.
    auto state = xs_->Read(platform::kNoTx, schema::BackendKey(self_, f, dev, schema::be::kState));
    if (!state.ok()) return;
    auto dev_obj = std::make_unique<XenbusBackend>(*env_, f, dev);
    dev_obj->Adopt();
    spdlog::info("dom {} dev {}: new device", f, dev);
    it = devices_.emplace(key, std::move(dev_obj)).first;
    if (Status s = xs_->Watch(schema::FrontendDir(f, dev), FrontendWatchToken(f, dev)); !s.ok()) {
      spdlog::error("dom {} dev {}: cannot watch the frontend: {}", f, dev, s.ToString());
    }
  }
  it->second->Refresh();
}

void Daemon::RescanFrontend(DomId f, std::set<DeviceKey>* seen) {
  auto devs = xs_->Directory(platform::kNoTx, schema::BackendFrontendDir(self_, f));
  if (!devs.ok()) return;
  for (const std::string& name : *devs) {
    auto dev = ParseDevId(name, "device id");
    if (!dev.ok()) {
      spdlog::debug("ignoring {}/{}: {}", schema::BackendFrontendDir(self_, f), name,
                    dev.status().message());
      continue;
    }
    seen->insert({f, *dev});
    Reconcile(f, *dev);
  }
}

void Daemon::Rescan() {
  std::set<DeviceKey> seen;
  auto fronts = xs_->Directory(platform::kNoTx, schema::BackendRoot(self_));
  if (fronts.ok()) {
    for (const std::string& name : *fronts) {
      auto f = ParseDomId(name, "frontend domain id");
      if (!f.ok()) continue;
      RescanFrontend(*f, &seen);
    }
  }
  std::vector<DeviceKey> gone;
  for (const auto& [key, dev] : devices_) {
    if (seen.count(key) == 0) gone.push_back(key);
  }
  for (const DeviceKey& key : gone) Reconcile(key.first, key.second);
}

void Daemon::HandleWatch(const platform::WatchEvent& ev, std::set<DeviceKey>* touched,
                         bool* rescan) {
  if (ev.token == kVaultToken) {
    HandleVaultRequest();
    return;
  }
  if (replication_ && replication_->HandleWatch(ev.token)) return;
  if (ev.token.rfind(kFrontendTokenPrefix, 0) == 0) {
    // Our own token: "<prefix><F>:<dev>".
    const std::string_view rest = std::string_view(ev.token).substr(kFrontendTokenPrefix.size());
    const size_t colon = rest.find(':');
    auto f = ParseDomId(rest.substr(0, colon));
    auto dev = colon == std::string_view::npos ? Result<DevId>(Status::InvalidArgument("token"))
                                               : ParseDevId(rest.substr(colon + 1));
    if (f.ok() && dev.ok() && devices_.count({*f, *dev}) != 0) touched->insert({*f, *dev});
    return;
  }
  if (ev.token != kBackendToken) return;
  const std::string root = schema::BackendRoot(self_);
  if (ev.path == root || ev.path.size() <= root.size() || ev.path.rfind(root + "/", 0) != 0) {
    *rescan = true;
    return;
  }
  const auto parts = Split(std::string_view(ev.path).substr(root.size() + 1));
  auto f = ParseDomId(parts[0]);
  if (!f.ok()) return;  // not a device directory: nothing of ours
  if (parts.size() < 2) {
    // <root>/<F> itself changed: devices may have come or gone.
    std::set<DeviceKey> seen;
    RescanFrontend(*f, &seen);
    for (const auto& [key, dev] : devices_) {
      if (key.first == *f && seen.count(key) == 0) touched->insert(key);
    }
    return;
  }
  auto dev = ParseDevId(parts[1]);
  if (!dev.ok()) return;
  // Our own statistics writes are not news.
  if (parts.size() >= 3 && parts[2] == schema::be::kStatisticsDir) return;
  touched->insert({*f, *dev});
}

Status Daemon::VaultNow(std::optional<uint64_t> request) {
  Status s = volumes_->VaultAll(/*only_changed=*/false);
  if (replication_) {
    Status r = replication_->VaultAll(/*only_changed=*/false);
    if (s.ok()) s = r;
  }
  if (request) {
    namespace dk = schema::daemon;
    const std::string_view result = s.ok() ? dk::kVaultResultOk : dk::kVaultResultError;
    Status w = platform::RunTransaction(*xs_, [&](platform::TxId tx) -> Status {
      VNVRAM_RETURN_IF_ERROR(xs_->Write(tx, schema::DaemonKey(self_, dk::kVaultResult), result));
      // Written last: waiters watch it.
      return xs_->Write(tx, schema::DaemonKey(self_, dk::kVaultCompleted),
                        std::to_string(*request));
    });
    if (!w.ok()) spdlog::error("cannot report vault request {}: {}", *request, w.ToString());
    vault_completed_ = *request;
  }
  return s;
}

void Daemon::HandleVaultRequest() {
  namespace dk = schema::daemon;
  auto v = xs_->Read(platform::kNoTx, schema::DaemonKey(self_, dk::kVaultRequest));
  if (!v.ok()) return;
  auto req = ParseU64InRange(*v, dk::kVaultRequestMin, dk::kVaultRequestMax, dk::kVaultRequest);
  if (!req.ok()) {
    spdlog::warn("ignoring vault request: {}", req.status().message());
    return;
  }
  if (*req <= vault_completed_) return;
  spdlog::info("vault request {}", *req);
  (void)VaultNow(*req);
}

void Daemon::PublishAllStats(bool force) {
  for (auto& [key, dev] : devices_) dev->PublishStats(force);
}

Status Daemon::Run(int signal_fd, int ready_fd) {
  namespace dk = schema::daemon;
  VNVRAM_RETURN_IF_ERROR(PublishDaemonKeys(dk::kStatusStarting).WithContext("daemon keys"));
  // The last vault request an earlier instance finished.
  if (auto c = xs_->Read(platform::kNoTx, schema::DaemonKey(self_, dk::kVaultCompleted)); c.ok()) {
    vault_completed_ = ParseU64(*c).value_or(0);
  }
  VNVRAM_RETURN_IF_ERROR(xs_->Watch(schema::BackendRoot(self_), kBackendToken));
  VNVRAM_RETURN_IF_ERROR(xs_->Watch(schema::DaemonKey(self_, dk::kVaultRequest), kVaultToken));
  if (replication_) {
    replication_->Publish(/*force=*/true);
    VNVRAM_RETURN_IF_ERROR(replication_->WatchRequests().WithContext("replication watches"));
  }
  Rescan();
  VNVRAM_RETURN_IF_ERROR(PublishDaemonKeys(dk::kStatusRunning).WithContext("daemon keys"));
  spdlog::info("serving {} as domain {}, host {}, {} device(s)", schema::BackendRoot(self_), self_,
               config_.host_id, devices_.size());
  if (Status n = service::NotifyReady(fmt::format("serving {} device(s)", devices_.size()));
      !n.ok()) {
    spdlog::warn("cannot notify the service manager: {}", n.ToString());
  }
  if (ready_fd >= 0) {
    const char byte = 'R';
    while (::write(ready_fd, &byte, 1) < 0 && errno == EINTR) {
    }
    ::close(ready_fd);
  }

  const Clock& clock = SystemClock::Instance();
  Nanos next_stats = clock.Now() + config_.stats_interval;
  const bool periodic_vault = config_.vault_interval.count() > 0;
  Nanos next_vault = clock.Now() + config_.vault_interval;
  Status result;
  bool stop = false;
  while (!stop) {
    Nanos next = next_stats;
    if (periodic_vault && next_vault < next) next = next_vault;
    const Nanos wait = next - clock.Now();
    const int timeout_ms =
        wait.count() <= 0 ? 0 : static_cast<int>((wait.count() + 999'999) / 1'000'000);
    pollfd fds[3] = {{xs_->WatchFd(), POLLIN, 0}, {signal_fd, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    const int n = ::poll(fds, 3, timeout_ms);
    if (n < 0 && errno != EINTR) {
      result = Status::FromErrno(errno, "poll");
      break;
    }
    bool rescan = false;
    bool reload = false;
    if (n > 0 && fds[1].revents != 0) {
      signalfd_siginfo si{};
      while (::read(signal_fd, &si, sizeof(si)) == static_cast<ssize_t>(sizeof(si))) {
        switch (si.ssi_signo) {
          case SIGTERM:
          case SIGINT:
            spdlog::info("signal {}: stopping", si.ssi_signo);
            if (Status n = service::NotifyStopping(); !n.ok()) {
              spdlog::warn("cannot notify the service manager: {}", n.ToString());
            }
            stop = true;
            break;
          case SIGHUP:
            // logrotate renamed the log file (or an operator asks for a
            // rescan, systemctl reload): reopen the log, then rescan.
            (void)service::NotifyReloading();  // READY=1 follows
            reload = true;
            if (Status r = log::Reopen(); !r.ok()) {
              spdlog::error("SIGHUP: cannot reopen the log: {}", r.ToString());
            }
            spdlog::info("SIGHUP: log reopened, rescanning devices");
            rescan = true;
            break;
          case SIGUSR1:
            spdlog::info("SIGUSR1: vaulting every region");
            (void)VaultNow(std::nullopt);
            break;
          default: break;
        }
      }
    }
    // Always drain: libxenstore's pipe may hold fewer bytes than events.
    std::set<DeviceKey> touched;
    for (;;) {
      auto ev = xs_->ReadWatch();
      if (!ev.ok()) {
        result = ev.status().WithContext("xenstore");
        stop = true;
        break;
      }
      if (!ev->has_value()) break;
      HandleWatch(**ev, &touched, &rescan);
    }
    if (!result.ok()) break;
    if (rescan) Rescan();
    if (reload) {
      (void)service::NotifyReady(fmt::format("serving {} device(s)", devices_.size()));
    }
    for (const DeviceKey& key : touched) Reconcile(key.first, key.second);
    if (n > 0 && fds[2].revents != 0) {
      uint64_t count = 0;
      (void)!::read(wake_fd_, &count, sizeof(count));
      for (auto& [key, dev] : devices_) {
        dev->CheckWorker();
        dev->PublishReplication(/*force=*/false);
        dev->CheckActivation();
      }
      if (replication_) replication_->Publish(/*force=*/false);
    }
    const Nanos now = clock.Now();
    if (now >= next_stats) {
      PublishAllStats(/*force=*/false);
      if (replication_) replication_->Publish(/*force=*/false);
      next_stats = now + config_.stats_interval;
    }
    if (periodic_vault && now >= next_vault) {
      (void)volumes_->VaultAll(/*only_changed=*/true);
      if (replication_) (void)replication_->VaultAll(/*only_changed=*/true);
      next_vault = now + config_.vault_interval;
    }
  }

  // Shutdown: quiet every ring, vault, then let go.
  (void)PublishDaemonKeys(dk::kStatusStopping);
  PublishAllStats(/*force=*/false);
  for (auto& [key, dev] : devices_) dev->Quiesce();
  Status v = volumes_->VaultAll(/*only_changed=*/false);
  if (!v.ok()) spdlog::error("final vault failed: {}", v.ToString());
  devices_.clear();
  if (replication_) {
    // Vaults every replicated copy and marks it clean (it may vouch after
    // the restart).
    Status r = replication_->Shutdown();
    if (!r.ok()) spdlog::error("final vault of the replicated volumes failed: {}", r.ToString());
    if (v.ok()) v = r;
    replication_->Publish(/*force=*/false);
  }
  spdlog::info("stopped");
  if (!result.ok()) return result;
  return v;
}

}  // namespace vnvram::backend
