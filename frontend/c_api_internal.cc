#include "frontend/c_api_internal.h"

namespace vnvram::capi {
namespace {

thread_local std::string g_last_error;

}  // namespace

int ErrnoOf(const Status& s) {
  if (s.sys_errno() != 0) return s.sys_errno();
  switch (s.code()) {
    case Code::kOk: return 0;
    case Code::kInvalidArgument: return EINVAL;
    case Code::kNotFound: return ENOENT;
    case Code::kAlreadyExists: return EEXIST;
    case Code::kPermissionDenied: return EACCES;
    case Code::kResourceExhausted: return ENOSPC;
    case Code::kAborted: return EAGAIN;
    case Code::kUnavailable: return ENODEV;
    case Code::kTimeout: return ETIMEDOUT;
    case Code::kIoError: return EIO;
    case Code::kCorruption: return EBADMSG;
    case Code::kOutOfRange: return ERANGE;
    case Code::kFailedPrecondition: return EBADFD;
    case Code::kNotSupported: return EOPNOTSUPP;
    case Code::kInternal: return EFAULT;
  }
  return EIO;
}

int Ret(const Status& s) {
  if (s.ok()) {
    g_last_error.clear();
    return 0;
  }
  g_last_error = s.ToString();
  return -ErrnoOf(s);
}

int NullHandle(const char* what) {
  g_last_error = std::string("vnvram: NULL ") + what + " handle";
  return -EINVAL;
}

const char* LastError() {
  return g_last_error.c_str();
}

void SetLastError(std::string message) {
  g_last_error = std::move(message);
}

}  // namespace vnvram::capi
