// ServiceNotify: tells the service manager what a daemon is doing, with
// systemd's notification protocol (sd_notify from Debian's libsystemd; this
// is the only file that includes systemd headers). When NOTIFY_SOCKET is
// not set (not started by systemd with Type=notify) every call is a no-op
// that returns Ok. Stateless; thread-safe.
#pragma once

#include <string_view>

#include "common/status.h"

namespace vnvram::service {

// READY=1 with STATUS=`status`: the daemon serves (its initial scan is done).
Status NotifyReady(std::string_view status);
// RELOADING=1: the daemon reloads (SIGHUP); NotifyReady() follows when done.
Status NotifyReloading();
// STOPPING=1: the daemon began its orderly shutdown.
Status NotifyStopping();
// STATUS=`status`: a one-line description shown by `systemctl status`.
Status NotifyStatus(std::string_view status);

}  // namespace vnvram::service
