// vnvramd: the vnvram backend daemon (driver domain). Runs in the
// foreground, logs to stderr. See docs/backend.md.
//
//   vnvramd --platform sim:<dir>:<domid>|xen --vault-dir D [--config F]
//           [--host-id NAME] [--vault-interval S] [--log-level L] [--log-file F]
//           [--ready-fd N]
//           [--cluster FILE [--key-file FILE] [--persist-timeout-ms MS]
//            [--persist-spin-us US] [--ring-spin-us US]]
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
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "backend/daemon.h"
#include "backend/daemon_config.h"
#include "backend/replica_only.h"
#include "backend/replication/cluster_config.h"
#include "backend/replication/curve.h"
#include "common/log.h"
#include "platform/platform.h"

namespace {

using vnvram::Status;
using vnvram::backend::ConfigOverrides;

int ConfigError(const std::string& msg) {
  std::fprintf(stderr, "vnvramd: %s\n", msg.c_str());
  return 2;
}

int Main(int argc, char** argv) {
  CLI::App app{"vnvramd: vnvram backend daemon"};
  std::string config_path, platform, vault_dir, host_id, log_level, log_file, vault_interval,
      cluster, key_file, persist_timeout, persist_spin, ring_spin;
  int ready_fd = -1;
  bool replica_only = false;
  app.add_option("--config", config_path, "config file of 'key = value' lines");
  app.add_option("--platform", platform, "xen or sim:<dir>:<domid>");
  app.add_option("--vault-dir", vault_dir, "directory of the volumes' vault files");
  app.add_option("--host-id", host_id, "this host's id (default: host name)");
  app.add_option("--vault-interval", vault_interval, "seconds between periodic vaults (0: off)");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off");
  app.add_option("--log-file", log_file,
                 "append log lines to this file (reopened on SIGHUP) instead of stderr");
  app.add_option("--cluster", cluster, "replication cluster file (JSON, docs/replication.md)");
  app.add_option("--key-file", key_file, "this host's CurveZMQ key pair (nvram-tool keygen)");
  app.add_option("--persist-timeout-ms", persist_timeout,
                 "a replicated persist fails when not acknowledged within this time");
  app.add_option("--persist-spin-us", persist_spin,
                 "a replicated persist waits this long for its ack without sleeping (default 300)");
  app.add_option("--ring-spin-us", ring_spin,
                 "a ring worker looks for the next request this long without sleeping before "
                 "it blocks (default 50)");
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
                        {"log-file", log_file},
                        {"cluster", cluster},
                        {"key-file", key_file},
                        {"persist-timeout-ms", persist_timeout},
                        {"persist-spin-us", persist_spin},
                        {"ring-spin-us", ring_spin}};
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

  if (config->log_file.empty()) {
    vnvram::log::Init("vnvramd", config->log_level);
  } else if (Status s = vnvram::log::InitToFile("vnvramd", config->log_level, config->log_file);
             !s.ok()) {
    return ConfigError(s.ToString());
  }

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
    const int rc = vnvram::backend::RunReplicaOnly(*config, sfd, ready_fd);
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
