#include "common/service_notify.h"

#include <systemd/sd-daemon.h>

#include <string>

namespace vnvram::service {

namespace {

// A newline would start another assignment in the message: keep one line.
std::string OneLine(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return out;
}

Status Send(const std::string& message) {
  // 0: NOTIFY_SOCKET is not set (nothing to tell); < 0: -errno.
  const int r = ::sd_notify(/*unset_environment=*/0, message.c_str());
  if (r < 0) return Status::FromErrno(-r, "sd_notify");
  return Status::Ok();
}

}  // namespace

Status NotifyReady(std::string_view status) {
  return Send("READY=1\nSTATUS=" + OneLine(status));
}

Status NotifyReloading() {
  return Send("RELOADING=1\nSTATUS=reloading");
}

Status NotifyStopping() {
  return Send("STOPPING=1\nSTATUS=stopping");
}

Status NotifyStatus(std::string_view status) {
  return Send("STATUS=" + OneLine(status));
}

}  // namespace vnvram::service
