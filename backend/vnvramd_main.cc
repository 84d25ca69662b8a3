// vnvramd: the vnvram backend daemon (driver domain). Runs in the
// foreground, logs to stderr. See docs/backend.md.
//
//   vnvramd --platform sim:<dir>:<domid>|xen --vault-dir D [--config F]
//           [--host-id NAME] [--vault-interval S] [--log-level L] [--ready-fd N]
//           [--cluster FILE [--key-file FILE] [--persist-timeout-ms MS]
//            [--persist-spin-us US]]
//   vnvramd --replica-only --cluster FILE --vault-dir D [--host-id NAME]
//           [--key-file FILE] [--vault-interval S] [--log-level L] [--ready-fd N]
//
// --replica-only runs only the replication engine: a member of the
// volumes' replica groups that serves no guest (a witness, so that a
// group of two paths on one host still has a majority when one goes). No
// platform, no xenstore: it binds its cluster endpoint, holds its copies,
// votes in elections, answers INSPECT, and vaults its copies on SIGTERM
// (marking them clean) like the full daemon.
//
// Exit status: 0 after a clean stop (SIGTERM/SIGINT, final vault done),
// 1 on a runtime error, 2 on a usage or configuration error.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <map>
#include <string>
#include <tuple>

#include "backend/daemon.h"
#include "backend/daemon_config.h"
#include "backend/replication/cluster_config.h"
#include "backend/replication/curve.h"
#include "backend/replication/engine.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/unique_fd.h"
#include "platform/platform.h"

namespace {

using vnvram::Status;
using vnvram::backend::ConfigOverrides;

int ConfigError(const std::string& msg) {
  std::fprintf(stderr, "vnvramd: %s\n", msg.c_str());
  return 2;
}

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
int RunReplicaOnly(const vnvram::backend::DaemonConfig& config, int signal_fd, int ready_fd) {
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
            stop = true;
            break;
          case SIGUSR1:
            spdlog::info("SIGUSR1: vaulting every copy");
            if (vnvram::Status s = (*engine)->VaultAll(/*only_changed=*/false); !s.ok()) {
              spdlog::error("vault failed: {}", s.ToString());
            }
            break;
          default: break;  // SIGHUP: nothing to rescan without devices
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

int Main(int argc, char** argv) {
  CLI::App app{"vnvramd: vnvram backend daemon"};
  std::string config_path, platform, vault_dir, host_id, log_level, vault_interval, cluster,
      key_file, persist_timeout, persist_spin;
  int ready_fd = -1;
  bool replica_only = false;
  app.add_option("--config", config_path, "config file of 'key = value' lines");
  app.add_option("--platform", platform, "xen or sim:<dir>:<domid>");
  app.add_option("--vault-dir", vault_dir, "directory of the volumes' vault files");
  app.add_option("--host-id", host_id, "this host's id (default: host name)");
  app.add_option("--vault-interval", vault_interval, "seconds between periodic vaults (0: off)");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off");
  app.add_option("--cluster", cluster, "replication cluster file (JSON, docs/replication.md)");
  app.add_option("--key-file", key_file, "this host's CurveZMQ key pair (nvram-tool keygen)");
  app.add_option("--persist-timeout-ms", persist_timeout,
                 "a replicated persist fails when not acknowledged within this time");
  app.add_option("--persist-spin-us", persist_spin,
                 "a replicated persist waits this long for its ack without sleeping (default 300)");
  app.add_option("--ready-fd", ready_fd, "write one byte to this fd once serving")
      ->check(CLI::Range(0, 1 << 20));
  app.add_flag("--replica-only", replica_only,
               "run only the replication engine (a witness member of the replica groups): no "
               "platform, no xenstore, no guests; needs --cluster");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }

  ConfigOverrides file;
  if (!config_path.empty()) {
    auto parsed = vnvram::backend::ParseConfigFile(config_path);
    if (!parsed.ok()) return ConfigError(parsed.status().message());
    file = std::move(parsed).value();
  }
  ConfigOverrides cli;
  struct Flag {
    const char* key;
    const std::string& value;
  };
  const Flag flags[] = {{"platform", platform},
                        {"vault-dir", vault_dir},
                        {"host-id", host_id},  // schema-lint: allow (option name)
                        {"vault-interval", vault_interval},
                        {"log-level", log_level},
                        {"cluster", cluster},
                        {"key-file", key_file},
                        {"persist-timeout-ms", persist_timeout},
                        {"persist-spin-us", persist_spin}};
  for (const Flag& f : flags) {
    if (app.count(std::string("--") + f.key) == 0) continue;
    if (Status s = vnvram::backend::ApplyConfigValue(f.key, f.value, &cli); !s.ok()) {
      return ConfigError("--" + s.message());
    }
  }
  if (replica_only) {
    if (Status s = vnvram::backend::ApplyConfigValue("replica-only", "1", &cli); !s.ok()) {
      return ConfigError("--" + s.message());
    }
  }
  auto config = vnvram::backend::MergeConfig(file, cli);
  if (!config.ok()) return ConfigError(config.status().message());
  // The cluster and key files are configuration too: a bad one is a usage
  // error (exit 2) found before anything starts.
  if (!config->cluster_file.empty()) {
    auto cluster = vnvram::replication::LoadClusterConfig(config->cluster_file);
    if (!cluster.ok()) return ConfigError(cluster.status().message());
    if (cluster->FindHost(config->host_id) == nullptr) {
      return ConfigError("host id '" + config->host_id + "' is not listed in " +
                         config->cluster_file + " (give --host-id)");
    }
  }
  if (!config->key_file.empty()) {
    auto keys = vnvram::replication::LoadKeyFile(config->key_file);
    if (!keys.ok()) return ConfigError(keys.status().message());
  }

  vnvram::log::Init("vnvramd", config->log_level);

  // Signals arrive through a signalfd; block them before any thread starts
  // so every thread inherits the mask.
  sigset_t mask;
  sigemptyset(&mask);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGUSR1}) sigaddset(&mask, sig);
  if (sigprocmask(SIG_BLOCK, &mask, nullptr) != 0) {
    spdlog::error("sigprocmask: {}", std::strerror(errno));
    return 1;
  }
  signal(SIGPIPE, SIG_IGN);
  const int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) {
    spdlog::error("signalfd: {}", std::strerror(errno));
    return 1;
  }

  if (config->replica_only) {
    if (!config->platform.empty()) {
      spdlog::info("replica-only: platform {} not used", config->platform);
    }
    const int rc = RunReplicaOnly(*config, sfd, ready_fd);
    close(sfd);
    return rc;
  }

  auto plat = vnvram::platform::OpenPlatform(config->platform);
  if (!plat.ok()) {
    spdlog::error("cannot open platform {}: {}", config->platform, plat.status().ToString());
    return 1;
  }
  auto daemon = vnvram::backend::Daemon::Create(*config, std::move(plat).value());
  if (!daemon.ok()) {
    spdlog::error("cannot start: {}", daemon.status().ToString());
    return 1;
  }
  Status s = (*daemon)->Run(sfd, ready_fd);
  daemon->reset();
  close(sfd);
  if (!s.ok()) {
    spdlog::error("{}", s.ToString());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vnvramd: fatal: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "vnvramd: fatal: unknown exception\n");
  }
  return 1;
}
