#include "common/status.h"

#include <cstring>

namespace vnvram {

std::string_view CodeName(Code code) {
  switch (code) {
    case Code::kOk: return "OK";
    case Code::kInvalidArgument: return "invalid argument";
    case Code::kNotFound: return "not found";
    case Code::kAlreadyExists: return "already exists";
    case Code::kPermissionDenied: return "permission denied";
    case Code::kResourceExhausted: return "resource exhausted";
    case Code::kAborted: return "aborted";
    case Code::kUnavailable: return "unavailable";
    case Code::kTimeout: return "timeout";
    case Code::kIoError: return "I/O error";
    case Code::kCorruption: return "corruption";
    case Code::kOutOfRange: return "out of range";
    case Code::kFailedPrecondition: return "failed precondition";
    case Code::kNotSupported: return "not supported";
    case Code::kInternal: return "internal error";
  }
  return "unknown";
}

Status::Status(Code code, std::string_view message, int sys_errno) {
  if (code != Code::kOk) {
    rep_ = std::make_shared<const Rep>(Rep{code, sys_errno, std::string(message)});
  }
}

namespace {
Code CodeForErrno(int err) {
  switch (err) {
    case 0: return Code::kInternal;
    case ENOENT: return Code::kNotFound;
    case EEXIST: return Code::kAlreadyExists;
    case EACCES:
    case EPERM: return Code::kPermissionDenied;
    case ENOSPC:
    case E2BIG:
    case EMFILE:
    case ENFILE:
    case ENOMEM:
    case EDQUOT: return Code::kResourceExhausted;
    case EAGAIN: return Code::kAborted;
    case EINVAL:
    case ENAMETOOLONG: return Code::kInvalidArgument;
    case ERANGE: return Code::kOutOfRange;
    case ETIMEDOUT: return Code::kTimeout;
    case ECONNREFUSED:
    case ECONNRESET:
    case EPIPE:
    case ENOTCONN:
    case ENXIO:
    case ENODEV: return Code::kUnavailable;
    case ENOSYS:
    case EOPNOTSUPP: return Code::kNotSupported;
    case EISCONN:
    case EBUSY: return Code::kFailedPrecondition;
    default: return Code::kIoError;
  }
}
}  // namespace

Status Status::FromErrno(int err, std::string_view what) {
  std::string msg(what);
  msg += ": ";
  msg += std::strerror(err);
  return Status(CodeForErrno(err), msg, err);
}

const std::string& Status::message() const {
  static const std::string kEmpty;
  return rep_ ? rep_->message : kEmpty;
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string s(CodeName(rep_->code));
  s += ": ";
  s += rep_->message;
  return s;
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return *this;
  std::string msg(context);
  msg += ": ";
  msg += rep_->message;
  return Status(rep_->code, msg, rep_->sys_errno);
}

}  // namespace vnvram
