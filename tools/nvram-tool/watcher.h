// Watcher: `nvram-tool watch`, the dom0 auto-attach daemon. On
// @introduceDomain it finds each new domain's config by convention
// (CONFIG_DIR/<domain name>.cfg), parses its vnvram= and attaches every
// path; on @releaseDomain it removes the vnvram nodes of every domain that
// no longer exists (so `xl destroy` and `xl shutdown` leave none). One
// owner; runs on the calling thread until stop_fd is readable.
#pragma once

#include <chrono>
#include <cstdio>
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
  // Watches, scans, signals ready, then serves events until `stop_fd`
  // (a signalfd) is readable.
  Status Run(int stop_fd);

 private:
  void HandleNewDomain(DomId d);

  platform::XenStore& xs_;
  const WatcherOptions options_;
  std::FILE* out_;
  std::FILE* err_;
  std::set<DomId> seen_;  // introduced domains already handled
};

}  // namespace vnvram::tools
