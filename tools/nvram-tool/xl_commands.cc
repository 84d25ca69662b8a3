#include "tools/nvram-tool/xl_commands.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>

#include "platform/platform.h"
#include "tools/nvram-tool/create.h"
#include "tools/nvram-tool/vnvram_config.h"
#include "tools/nvram-tool/watcher.h"

namespace vnvram::tools {
namespace {

int Usage(const std::string& msg) {
  std::fprintf(stderr, "nvram-tool: %s\n", msg.c_str());
  return 2;
}

int Fail(const Status& s) {
  std::fprintf(stderr, "nvram-tool: %s\n", s.ToString().c_str());
  return 1;
}

// Points stdout and stderr (the watcher's lines and the tool's log) at
// `path`, opened for appending; called again after logrotate renamed it.
Status RedirectOutputTo(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) return Status::FromErrno(errno, "open log file " + path);
  std::fflush(stdout);
  std::fflush(stderr);
  const bool ok = ::dup2(fd, STDOUT_FILENO) >= 0 && ::dup2(fd, STDERR_FILENO) >= 0;
  const int err = errno;
  ::close(fd);
  if (!ok) return Status::FromErrno(err, "dup2");
  return Status::Ok();
}

}  // namespace

XlCommands::XlCommands(CLI::App& app, const std::string& platform_spec)
    : platform_spec_(platform_spec) {
  create_ = app.add_subcommand(
      "create",
      "xl create -p a domain, attach its vnvram= devices, wait until they are ready, unpause");
  create_->add_option("config", c_config_, "the domain's xl config file (vnvram.cfg(5))")
      ->required();
  create_->add_option("xl-options", c_xl_args_,
                      "after --: options and KEY=VALUE settings passed to xl create");
  create_->add_option("--xl", c_xl_, "the xl to run (default: xl in PATH)");
  create_->add_option("--timeout", c_timeout_,
                      "seconds the backends may take to become ready (default 30)");

  watch_ = app.add_subcommand(
      "watch",
      "attach the vnvram= devices of each new domain whose config is CONFIG_DIR/NAME.cfg; "
      "remove the vnvram nodes of domains that are gone; until SIGINT or SIGTERM (SIGHUP "
      "reopens --log-file)");
  watch_->add_option("--config-dir", w_dir_,
                     "where configs are found (default " + std::string(kDefaultConfigDir) + ")");
  watch_->add_option("--ready-fd", w_ready_fd_,
                     "write one byte to this fd and close it once watching");
  watch_->add_option("--close-timeout", w_close_timeout_,
                     "seconds a dead domain's backends get to close (default 5)");
  watch_->add_option("--log-file", w_log_file_,
                     "append output to this file (reopened on SIGHUP) instead of stdout/stderr");
}

std::optional<int> XlCommands::RunIfParsed() {
  if (create_->parsed()) return Create();
  if (watch_->parsed()) return Watch();
  return std::nullopt;
}

int XlCommands::Create() {
  // Everything about the config is checked before xl runs.
  CreateOptions o;
  o.config_path = c_config_;
  o.xl_args = c_xl_args_;
  o.xl = c_xl_;
  auto t = ParseU64InRange(c_timeout_, 1, 3600, "--timeout");
  if (!t.ok()) return Usage(t.status().message());
  o.ready_timeout = std::chrono::seconds(*t);
  if (c_config_.empty()) return Usage("config '': empty file name");
  auto cfg = ReadXlConfigFile(c_config_);
  if (!cfg.ok()) {
    return cfg.status().code() == Code::kInvalidArgument ? Usage(cfg.status().message())
                                                         : Fail(cfg.status());
  }
  auto name = EffectiveDomainName(*cfg, o.xl_args);
  if (!name.ok()) return Usage(name.status().message());
  if (auto xl = FindXl(o.xl); !xl.ok()) return Fail(xl.status());

  // SIGINT/SIGTERM tear the half-made domain down instead of leaving it
  // paused: blocked (in every thread: before the platform starts any) and
  // read through a signalfd.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  if (pthread_sigmask(SIG_BLOCK, &stop, nullptr) != 0 ||
      (o.stop_fd = signalfd(-1, &stop, SFD_CLOEXEC)) < 0) {
    return Fail(Status::FromErrno(errno, "signalfd"));
  }
  auto platform = platform::OpenPlatform(platform_spec_);
  if (!platform.ok()) return Fail(platform.status());
  auto xs = (*platform)->OpenXenStore();
  if (!xs.ok()) return Fail(xs.status().WithContext("opening xenstore"));
  auto r = CreateDomain(**xs, *cfg, o, stdout);
  ::close(o.stop_fd);
  if (!r.ok()) return Fail(r.status());
  std::printf("domain %s (id %u) running with %zu vnvram device%s\n", r->name.c_str(),
              unsigned{r->domid}, r->devices, r->devices == 1 ? "" : "s");
  return 0;
}

int XlCommands::Watch() {
  WatcherOptions o;
  if (!w_dir_.empty()) o.config_dir = w_dir_;
  if (!w_ready_fd_.empty()) {
    auto fd = ParseU64InRange(w_ready_fd_, 0, 1u << 20, "--ready-fd");
    if (!fd.ok()) return Usage(fd.status().message());
    if (::fcntl(static_cast<int>(*fd), F_GETFD) < 0) {
      return Usage("--ready-fd " + w_ready_fd_ + ": not an open file descriptor");
    }
    o.ready_fd = static_cast<int>(*fd);
  }
  auto ct = ParseU64InRange(w_close_timeout_, 1, 3600, "--close-timeout");
  if (!ct.ok()) return Usage(ct.status().message());
  o.close_timeout = std::chrono::seconds(*ct);
  struct stat st {};
  if (::stat(o.config_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Usage("--config-dir " + QuoteForError(o.config_dir, 200) + ": not a directory");
  }
  if (!w_log_file_.empty()) {
    if (w_log_file_.front() != '/') {
      return Usage("--log-file " + QuoteForError(w_log_file_, 200) + ": not an absolute path");
    }
    if (Status s = RedirectOutputTo(w_log_file_); !s.ok()) return Usage(s.ToString());
    o.on_hangup = [path = w_log_file_] {
      if (Status s = RedirectOutputTo(path); !s.ok()) {
        std::fprintf(stderr, "nvram-tool watch: SIGHUP: %s\n", s.ToString().c_str());
      } else {
        std::printf("SIGHUP: log file reopened\n");
        std::fflush(stdout);
      }
    };
  }

  // Before the platform starts a thread: every thread inherits the mask.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGHUP);
  int sfd = -1;
  if (pthread_sigmask(SIG_BLOCK, &stop, nullptr) != 0 ||
      (sfd = signalfd(-1, &stop, SFD_CLOEXEC)) < 0) {
    return Fail(Status::FromErrno(errno, "signalfd"));
  }
  auto platform = platform::OpenPlatform(platform_spec_);
  if (!platform.ok()) return Fail(platform.status());
  auto xs = (*platform)->OpenXenStore();
  if (!xs.ok()) return Fail(xs.status().WithContext("opening xenstore"));
  Watcher w(**xs, o, stdout, stderr);
  Status s = w.Run(sfd);
  ::close(sfd);
  if (!s.ok()) return Fail(s);
  return 0;
}

}  // namespace vnvram::tools
