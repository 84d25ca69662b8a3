// Status: the error value returned across every boundary a guest, a peer or
// an operator can reach. Free on success (no allocation), a code plus a
// one-line message on failure. Immutable after construction; safe to copy
// between threads.
#pragma once

#include <cerrno>
#include <memory>
#include <string>
#include <string_view>

namespace vnvram {

enum class Code : unsigned char {
  kOk = 0,
  kInvalidArgument,     // the caller (guest, peer, operator) sent a bad value
  kNotFound,            // ENOENT
  kAlreadyExists,       // EEXIST
  kPermissionDenied,    // EACCES / EPERM
  kResourceExhausted,   // ENOSPC, E2BIG, EMFILE, quotas
  kAborted,             // EAGAIN: retry (transaction conflict)
  kUnavailable,         // the other side is gone or not there yet
  kTimeout,             // a deadline passed
  kIoError,             // an operating-system call failed
  kCorruption,          // bytes failed a check
  kOutOfRange,          // offset/length outside bounds
  kFailedPrecondition,  // wrong state for this call
  kNotSupported,        // not available on this platform / build
  kInternal,            // a bug
};

std::string_view CodeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(Code code, std::string_view message, int sys_errno = 0);

  static Status Ok() { return {}; }
  static Status InvalidArgument(std::string_view m) { return {Code::kInvalidArgument, m}; }
  static Status NotFound(std::string_view m) { return {Code::kNotFound, m}; }
  static Status AlreadyExists(std::string_view m) { return {Code::kAlreadyExists, m}; }
  static Status PermissionDenied(std::string_view m) { return {Code::kPermissionDenied, m}; }
  static Status ResourceExhausted(std::string_view m) { return {Code::kResourceExhausted, m}; }
  static Status Aborted(std::string_view m) { return {Code::kAborted, m}; }
  static Status Unavailable(std::string_view m) { return {Code::kUnavailable, m}; }
  static Status Timeout(std::string_view m) { return {Code::kTimeout, m}; }
  static Status IoError(std::string_view m) { return {Code::kIoError, m}; }
  static Status Corruption(std::string_view m) { return {Code::kCorruption, m}; }
  static Status OutOfRange(std::string_view m) { return {Code::kOutOfRange, m}; }
  static Status FailedPrecondition(std::string_view m) { return {Code::kFailedPrecondition, m}; }
  static Status NotSupported(std::string_view m) { return {Code::kNotSupported, m}; }
  static Status Internal(std::string_view m) { return {Code::kInternal, m}; }

  // Maps an errno value to a Code and keeps it; `what` names the failed call
  // and its argument, e.g. "open /dev/xen/gntdev".
  static Status FromErrno(int err, std::string_view what);

  bool ok() const { return rep_ == nullptr; }
  Code code() const { return rep_ ? rep_->code : Code::kOk; }
  // errno behind this status, 0 when it did not come from a system call.
  int sys_errno() const { return rep_ ? rep_->sys_errno : 0; }
  const std::string& message() const;
  // "OK" or "<code name>: <message>".
  std::string ToString() const;

  // Returns a status with the same code and errno and "context: message".
  Status WithContext(std::string_view context) const;

 private:
  struct Rep {
    Code code;
    int sys_errno;
    std::string message;
  };
  std::shared_ptr<const Rep> rep_;
};

inline bool operator==(const Status& a, Code c) {
  return a.code() == c;
}

}  // namespace vnvram

#define VNVRAM_CONCAT_INNER_(a, b) a##b
#define VNVRAM_CONCAT_(a, b) VNVRAM_CONCAT_INNER_(a, b)

// Returns the status from the enclosing function when it is not OK.
#define VNVRAM_RETURN_IF_ERROR(expr)                 \
  do {                                               \
    ::vnvram::Status vnvram_status_ = (expr);        \
    if (!vnvram_status_.ok()) return vnvram_status_; \
  } while (0)
