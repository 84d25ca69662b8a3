#include "platform/sim/store/xs_errors.h"

#include <cerrno>
#include <cstdint>

// xs_wire.h only defines the xsd_errors table when EINVAL is visible.
#include "platform/sim/store/xen_xs_wire.h"

namespace vnvram::sim {

Status XsError(int err, std::string_view what) {
  return Status::FromErrno(err, what);
}

std::string_view XsErrorName(int err) {
  for (const auto& e : xsd_errors) {
    if (e.errnum == err) return e.errstring;
  }
  return "EINVAL";
}

int XsErrnoOf(const Status& s) {
  const int err = s.sys_errno();
  for (const auto& e : xsd_errors) {
    if (e.errnum == err) return err;
  }
  return EINVAL;
}

}  // namespace vnvram::sim
