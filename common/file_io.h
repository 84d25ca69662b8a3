// File helpers for the on-disk formats written atomically (vault, state
// file, key file): write a whole buffer, fsync a directory. Stateless
// functions over file descriptors; thread-safe.
#pragma once

#include <cstddef>
#include <span>
#include <string>

#include "common/status.h"

namespace vnvram {

// Writes all of `data` to `fd`, retrying on EINTR and short writes. The
// error names `what` (usually the file's path).
Status WriteAll(int fd, std::span<const std::byte> data, const std::string& what);

// fsync(2) of the directory `dir`, so that a rename into it is durable.
Status FsyncDirectory(const std::string& dir);

}  // namespace vnvram
