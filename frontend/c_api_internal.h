// What the C API's files share (frontend/c_api.cc, journal/journal_c_api.cc):
// the vnvram_dev handle, Status to negative errno, the calling thread's last
// error message (vnvram_last_error) and the guard that turns an exception
// into an error value. Thread-safety: the last error is per thread.
#pragma once

#include <cerrno>
#include <exception>
#include <memory>
#include <string>

#include "common/status.h"
#include "vnvram/vnvram.hpp"

struct vnvram_dev {
  std::unique_ptr<vnvram::Device> device;
};

namespace vnvram::capi {

// The errno value of a Status (its own errno when it carries one).
int ErrnoOf(const Status& s);
// 0 for OK, else -ErrnoOf(s); records s as this thread's last error.
int Ret(const Status& s);
// -EINVAL with a message naming the NULL handle.
int NullHandle(const char* what);
// This thread's last error ("" when none).
const char* LastError();
void SetLastError(std::string message);

// Runs f (returning int) and turns an exception into -ENOMEM / -EFAULT.
template <typename F>
int Guard(F&& f) {
  try {
    return f();
  } catch (const std::exception& e) {  // allocation failure and the like
    SetLastError(std::string("vnvram: ") + e.what());
    return -ENOMEM;
  } catch (...) {
    SetLastError("vnvram: unexpected exception");
    return -EFAULT;
  }
}

}  // namespace vnvram::capi
