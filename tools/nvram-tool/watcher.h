// Watcher: `nvram-tool watch`, the dom0 auto-attach daemon. On
// @introduceDomain it finds each new domain's config by convention
// (CONFIG_DIR/<domain name>.cfg), parses its vnvram= and attaches every
// path; on @releaseDomain it removes the vnvram nodes of every domain that
// no longer exists (so `xl destroy` and `xl shutdown` leave none). Tells
// systemd (NOTIFY_SOCKET) when it is watching and when it stops. One
// owner; runs on the calling thread until SIGTERM or SIGINT arrives.
#pragma once

#include <chrono>
#include <cstdio>
#include <functional>
#include <set>
#include <string>

#include "common/result.h"
#include "platform/xenstore.h"

namespace vnvram::tools {

inline constexpr std::string_view kDefaultConfigDir = "/etc/vnvram/domains";

struct WatcherOptions {
  std::string config_dir{kDefaultConfigDir};
  // How long a dead domain's backends get to reach Closed before their
  // directories are removed anyway.
  std::chrono::milliseconds close_timeout{5000};
  // Written one byte and closed once the watches are set and the first
  // scan is done (-1: none).
  int ready_fd = -1;
  // Called on SIGHUP (e.g. to reopen a log file after logrotate); may be
  // empty.
  std::function<void()> on_hangup;
};

class Watcher {
 public:
  // `out` gets one line per action, `err` one line per problem (a bad
  // config does not stop the watcher).
  Watcher(platform::XenStore& xs, WatcherOptions options, std::FILE* out, std::FILE* err);

  // Scans for domains introduced since the last scan and attaches their
  // devices.
  Status OnIntroduce();
  // Reaps the vnvram nodes of every frontend domain that is gone.
  Status OnRelease();
  // Watches, scans, signals ready, then serves events until SIGTERM or
  // SIGINT arrives on `signal_fd` (a signalfd for those and SIGHUP).
  Status Run(int signal_fd);

 private:
  void HandleNewDomain(DomId d);

  platform::XenStore& xs_;
  const WatcherOptions options_;
  std::FILE* out_;
  std::FILE* err_;
  std::set<DomId> seen_;  // introduced domains already handled
};

}  // namespace vnvram::tools
