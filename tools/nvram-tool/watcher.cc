#include "tools/nvram-tool/watcher.h"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "common/service_notify.h"
#include "tools/nvram-tool/config_devices.h"
#include "tools/nvram-tool/vnvram_config.h"
#include "xenstore-schema/schema.h"

namespace vnvram::tools {
namespace {

constexpr std::string_view kIntroToken = "nvram-tool:watch:introduce";
constexpr std::string_view kReleaseToken = "nvram-tool:watch:release";

}  // namespace

Watcher::Watcher(platform::XenStore& xs, WatcherOptions options, std::FILE* out, std::FILE* err)
    : xs_(xs), options_(std::move(options)), out_(out), err_(err) {}

void Watcher::HandleNewDomain(DomId d) {
  auto name = ReadDomainName(xs_, d);
  if (!name.ok()) {
    std::fprintf(err_, "nvram-tool watch: domain %u: %s\n", unsigned{d},
                 name.status().ToString().c_str());
    return;
  }
  if (!name->has_value()) return;  // not made by a toolstack that names domains
  const std::string& n = **name;
  if (!IsValidDomainName(n)) {
    std::fprintf(err_, "nvram-tool watch: domain %u: name %s is not a valid file name\n",
                 unsigned{d}, QuoteForError(n).c_str());
    return;
  }
  const std::string path = options_.config_dir + "/" + n + ".cfg";
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 && errno == ENOENT) return;  // no vnvram for it
  auto cfg = ReadXlConfigFile(path);
  if (!cfg.ok()) {
    std::fprintf(err_, "nvram-tool watch: domain %u (%s): %s\n", unsigned{d}, n.c_str(),
                 cfg.status().message().c_str());
    return;
  }
  if (cfg->name && *cfg->name != n) {
    std::fprintf(err_, "nvram-tool watch: domain %u (%s): %s:%d: name \"%s\" does not match\n",
                 unsigned{d}, n.c_str(), path.c_str(), cfg->name_line, cfg->name->c_str());
    return;
  }
  auto specs = ResolveDevices(xs_, *cfg, d);
  std::vector<AttachSpec> attached;
  Status s = specs.ok() ? AttachDevices(xs_, *specs, &attached) : specs.status();
  for (const AttachSpec& a : attached) {
    std::fprintf(out_, "attached domain %u (%s) device %u: volume %s, backend domain %u, %s\n",
                 unsigned{d}, n.c_str(), a.dev, a.volume.ToString().c_str(), unsigned{a.backend},
                 FormatSize(a.size).c_str());
  }
  if (!s.ok()) {
    std::fprintf(err_, "nvram-tool watch: domain %u (%s): %s\n", unsigned{d}, n.c_str(),
                 s.ToString().c_str());
  }
}

Status Watcher::OnIntroduce() {
  auto doms = xs_.Directory(platform::kNoTx, schema::kDomainRoot);
  if (!doms.ok()) {
    return doms.status().code() == Code::kNotFound ? Status::Ok() : doms.status();
  }
  for (const std::string& dname : *doms) {
    auto d = ParseDomId(dname, "domain");
    if (!d.ok() || *d == 0 || seen_.count(*d) != 0) continue;
    VNVRAM_ASSIGN_OR_RETURN(const bool alive, xs_.IsDomainIntroduced(*d));
    if (!alive) continue;
    seen_.insert(*d);
    HandleNewDomain(*d);
  }
  std::fflush(out_);
  std::fflush(err_);
  return Status::Ok();
}

Status Watcher::OnRelease() {
  // Domain ids are reused: forget those that are gone.
  for (auto it = seen_.begin(); it != seen_.end();) {
    auto alive = xs_.IsDomainIntroduced(*it);
    if (alive.ok() && !*alive) {
      it = seen_.erase(it);
    } else {
      ++it;
    }
  }
  VNVRAM_ASSIGN_OR_RETURN(auto dead, FindDeadFrontends(xs_));
  for (DomId f : dead) {
    auto n = ReapDomain(xs_, f, options_.close_timeout);
    if (n.ok()) {
      std::fprintf(out_, "removed the vnvram nodes of domain %u (%zu device%s)\n", unsigned{f}, *n,
                   *n == 1 ? "" : "s");
    } else {
      std::fprintf(err_, "nvram-tool watch: domain %u: %s\n", unsigned{f},
                   n.status().ToString().c_str());
    }
  }
  std::fflush(out_);
  std::fflush(err_);
  return Status::Ok();
}

Status Watcher::Run(int signal_fd) {
  VNVRAM_RETURN_IF_ERROR(xs_.Watch(platform::kIntroduceDomainWatch, kIntroToken));
  VNVRAM_RETURN_IF_ERROR(xs_.Watch(platform::kReleaseDomainWatch, kReleaseToken));
  VNVRAM_RETURN_IF_ERROR(OnRelease());
  VNVRAM_RETURN_IF_ERROR(OnIntroduce());
  std::fprintf(out_, "watching for domains (configs in %s)\n", options_.config_dir.c_str());
  std::fflush(out_);
  if (Status n =
          service::NotifyReady("watching for domains (configs in " + options_.config_dir + ")");
      !n.ok()) {
    std::fprintf(err_, "nvram-tool watch: cannot notify the service manager: %s\n",
                 n.ToString().c_str());
  }
  if (options_.ready_fd >= 0) {
    const char byte = 'R';
    while (::write(options_.ready_fd, &byte, 1) < 0 && errno == EINTR) {
    }
    ::close(options_.ready_fd);
  }
  for (;;) {
    pollfd fds[2] = {{signal_fd, POLLIN, 0}, {xs_.WatchFd(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "poll");
    }
    if ((fds[0].revents & POLLIN) != 0) {
      signalfd_siginfo si{};
      if (::read(signal_fd, &si, sizeof(si)) == static_cast<ssize_t>(sizeof(si)) &&
          si.ssi_signo == SIGHUP) {
        (void)service::NotifyReloading();
        if (options_.on_hangup) options_.on_hangup();
        (void)service::NotifyReady("watching for domains (configs in " + options_.config_dir + ")");
        continue;
      }
      (void)service::NotifyStopping();  // nothing else to tell when it fails
      return Status::Ok();
    }
    bool intro = false;
    bool release = false;
    for (;;) {
      VNVRAM_ASSIGN_OR_RETURN(auto ev, xs_.ReadWatch());
      if (!ev) break;
      intro = intro || ev->token == kIntroToken;
      release = release || ev->token == kReleaseToken;
    }
    // Release first: a domain id freed and reused between two events is
    // cleaned before its new owner is handled.
    if (release) VNVRAM_RETURN_IF_ERROR(OnRelease());
    if (intro) VNVRAM_RETURN_IF_ERROR(OnIntroduce());
  }
}

}  // namespace vnvram::tools
