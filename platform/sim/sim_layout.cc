#include "platform/sim/sim_layout.h"

#include <sys/stat.h>

#include <cerrno>

namespace vnvram::sim {

Status MakeDirs(const std::string& path) {
  if (path.empty()) return Status::InvalidArgument("sim directory: empty path");
  for (size_t pos = 1; pos <= path.size(); ++pos) {
    if (pos != path.size() && path[pos] != '/') continue;
    const std::string prefix = path.substr(0, pos);
    if (::mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST) {
      return Status::FromErrno(errno, "mkdir " + prefix);
    }
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Status::FromErrno(errno, "stat " + path);
  if (!S_ISDIR(st.st_mode)) return Status::FailedPrecondition(path + ": not a directory");
  return Status::Ok();
}

}  // namespace vnvram::sim
