#include "backend/replica_only.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "backend/replication/cluster_config.h"
#include "backend/replication/curve.h"
#include "backend/replication/engine.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/service_notify.h"
#include "common/unique_fd.h"

namespace vnvram::backend {
namespace {

void WriteReady(int ready_fd) {
  if (ready_fd < 0) return;
  const char byte = 'R';
  while (::write(ready_fd, &byte, 1) < 0 && errno == EINTR) {
  }
  ::close(ready_fd);
}

// Logs what changed in the engine's state since the last call: each
// volume's role, epoch, serving and vouching, and each peer's link state
// (not every sequence: the copies move with every persist).
class StatusLogger {
 public:
  void Log(const vnvram::replication::EngineStatus& st) {
    using vnvram::replication::RoleName;
    for (const auto& v : st.volumes) {
      const auto now = std::make_tuple(std::string(RoleName(v.view.role)), v.view.epoch,
                                       v.view.serving, v.view.vouch);
      auto [it, added] = volumes_.try_emplace(v.entry.uuid.ToString(), now);
      if (!added && it->second == now) continue;
      it->second = now;
      spdlog::info("volume {} ({}): role {}, epoch {}, content ({}, {}), serving {}, vouching {}",
                   v.entry.name, v.entry.uuid.ToString(), std::get<0>(now), v.view.epoch,
                   v.view.content_epoch, v.view.content_seq, v.view.serving ? 1 : 0,
                   v.view.vouch ? 1 : 0);
    }
    for (const auto& p : st.peers) {
      auto [it, added] = peers_.try_emplace(p.host, p.state);
      if (!added && it->second == p.state) continue;
      it->second = p.state;
      spdlog::info("peer {} ({}): {}", p.host, p.endpoint, p.state);
    }
  }

 private:
  std::map<std::string, std::tuple<std::string, uint64_t, bool, bool>> volumes_;
  std::map<std::string, std::string> peers_;
};

// vnvramd --replica-only: the replication engine alone, until SIGTERM or
// SIGINT on `signal_fd`; then the engine's shutdown vaults every copy and
// marks it clean. 0 on a clean stop, 1 on an error.
}  // namespace

int RunReplicaOnly(const DaemonConfig& config, int signal_fd, int ready_fd) {
  namespace repl = vnvram::replication;
  // One process per vault directory, as the full daemon: two would
  // overwrite each other's vaults and state files.
  std::error_code ec;
  std::filesystem::create_directories(config.vault_dir, ec);
  if (ec) {
    spdlog::error("create vault directory {}: {}", config.vault_dir, ec.message());
    return 1;
  }
  const std::string lock_path = config.vault_dir + "/.vnvramd.lock";
  vnvram::UniqueFd lock(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (lock.get() < 0) {
    spdlog::error("open {}: {}", lock_path, std::strerror(errno));
    return 1;
  }
  if (::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) {
    spdlog::error("{}", errno == EWOULDBLOCK
                            ? "another vnvramd is using the vault directory " + config.vault_dir
                            : "lock " + lock_path + ": " + std::strerror(errno));
    return 1;
  }
  vnvram::UniqueFd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (wake.get() < 0) {
    spdlog::error("eventfd: {}", std::strerror(errno));
    return 1;
  }

  auto cluster = repl::LoadClusterConfig(config.cluster_file);
  if (!cluster.ok()) {
    spdlog::error("{}", cluster.status().ToString());
    return 1;
  }
  std::vector<std::string> mine;
  for (const repl::VolumeEntry& v : cluster->volumes) {
    if (!v.HasReplica(config.host_id)) continue;
    mine.push_back(v.name + " (" + v.uuid.ToString() + ")");
    if (v.replicas.front() == config.host_id) {
      spdlog::warn(
          "volume {}: this replica-only host is the group's first replica: it starts the "
          "group as primary with no guest to serve (list it later in 'replicas')",
          v.name);
    }
  }
  if (mine.empty()) {
    spdlog::warn("host {} is in no volume's replica group of {}: nothing to replicate",
                 config.host_id, config.cluster_file);
  }
  repl::EngineOptions o;
  o.host_id = config.host_id;
  o.cluster = std::move(cluster).value();
  o.state_dir = config.vault_dir;
  o.persist_timeout = config.persist_timeout;
  o.persist_spin = config.persist_spin;
  const int wake_fd = wake.get();
  o.on_change = [wake_fd] {
    const uint64_t one = 1;
    while (::write(wake_fd, &one, sizeof(one)) < 0 && errno == EINTR) {
    }
  };
  if (!config.key_file.empty()) {
    auto keys = repl::LoadKeyFile(config.key_file);
    if (!keys.ok()) {
      spdlog::error("{}", keys.status().ToString());
      return 1;
    }
    o.keys = std::move(keys).value();
  }
  std::string endpoint;
  if (const repl::HostEntry* h = o.cluster.FindHost(config.host_id); h != nullptr) {
    endpoint = h->endpoint;
  }
  auto engine = repl::Engine::Start(std::move(o));
  if (!engine.ok()) {
    spdlog::error("cannot start the replication engine: {}", engine.status().ToString());
    return 1;
  }
  std::string list;
  for (const std::string& m : mine) list += (list.empty() ? "" : ", ") + m;
  spdlog::info("replica-only: host {} on {}, vault directory {}, {} volume(s){}{}", config.host_id,
               endpoint, config.vault_dir, mine.size(), list.empty() ? "" : ": ", list);
  StatusLogger status_log;
  status_log.Log((*engine)->GetStatus());
  if (vnvram::Status n =
          vnvram::service::NotifyReady(fmt::format("replica-only, {} volume(s)", mine.size()));
      !n.ok()) {
    spdlog::warn("cannot notify the service manager: {}", n.ToString());
  }
  WriteReady(ready_fd);

  const vnvram::Clock& clock = vnvram::SystemClock::Instance();
  const bool periodic_vault = config.vault_interval.count() > 0;
  vnvram::Nanos next_vault = clock.Now() + config.vault_interval;
  int rc = 0;
  bool stop = false;
  while (!stop) {
    int timeout_ms = -1;
    if (periodic_vault) {
      const vnvram::Nanos wait = next_vault - clock.Now();
      timeout_ms = wait.count() <= 0 ? 0 : static_cast<int>((wait.count() + 999'999) / 1'000'000);
    }
    pollfd fds[2] = {{signal_fd, POLLIN, 0}, {wake_fd, POLLIN, 0}};
    const int n = ::poll(fds, 2, timeout_ms);
    if (n < 0 && errno != EINTR) {
      spdlog::error("poll: {}", std::strerror(errno));
      rc = 1;
      break;
    }
    if (n > 0 && fds[0].revents != 0) {
      signalfd_siginfo si{};
      while (::read(signal_fd, &si, sizeof(si)) == static_cast<ssize_t>(sizeof(si))) {
        switch (si.ssi_signo) {
          case SIGTERM:
          case SIGINT:
            spdlog::info("signal {}: stopping", si.ssi_signo);
            if (vnvram::Status n = vnvram::service::NotifyStopping(); !n.ok()) {
              spdlog::warn("cannot notify the service manager: {}", n.ToString());
            }
            stop = true;
            break;
          case SIGHUP:
            // Nothing to rescan without devices; logrotate wants the log reopened.
            (void)vnvram::service::NotifyReloading();
            if (vnvram::Status r = vnvram::log::Reopen(); !r.ok()) {
              spdlog::error("SIGHUP: cannot reopen the log: {}", r.ToString());
            } else {
              spdlog::info("SIGHUP: log reopened");
            }
            (void)vnvram::service::NotifyReady("replica-only");
            break;
          case SIGUSR1:
            spdlog::info("SIGUSR1: vaulting every copy");
            if (vnvram::Status s = (*engine)->VaultAll(/*only_changed=*/false); !s.ok()) {
              spdlog::error("vault failed: {}", s.ToString());
            }
            break;
          default: break;
        }
      }
    }
    if (n > 0 && fds[1].revents != 0) {
      uint64_t count = 0;
      (void)!::read(wake_fd, &count, sizeof(count));
      status_log.Log((*engine)->GetStatus());
    }
    if (periodic_vault && clock.Now() >= next_vault) {
      if (vnvram::Status s = (*engine)->VaultAll(/*only_changed=*/true); !s.ok()) {
        spdlog::error("periodic vault failed: {}", s.ToString());
      }
      next_vault = clock.Now() + config.vault_interval;
    }
  }
  // Stops the I/O thread, vaults every copy and marks it clean (it may
  // vouch after the restart), as the full daemon's shutdown.
  if (vnvram::Status s = (*engine)->Shutdown(); !s.ok()) {
    spdlog::error("final vault of the replicated volumes failed: {}", s.ToString());
    rc = 1;
  }
  engine->reset();
  spdlog::info("stopped");
  return rc;
}

}  // namespace vnvram::backend
