#include "platform/sim/sim_shared_table.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

namespace vnvram::sim {

namespace {
// Unlocks and closes an fd on every return path. The explicit unlock
// matters: a mapping keeps the open file (and so its flock) alive after
// close().
struct FdCloser {
  int fd;
  ~FdCloser() {
    if (fd >= 0) {
      ::flock(fd, LOCK_UN);
      ::close(fd);
    }
  }
};
}  // namespace

Result<std::unique_ptr<SharedTable>> SharedTable::Open(
    const std::string& path, size_t size, const std::function<void(std::byte*)>& init,
    const std::function<Status(const std::byte*)>& check) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Status::FromErrno(errno, "open " + path);
  FdCloser closer{fd};
  while (::flock(fd, LOCK_EX) != 0) {
    if (errno != EINTR) return Status::FromErrno(errno, "flock " + path);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) return Status::FromErrno(errno, "fstat " + path);
  const bool fresh = st.st_size == 0;
  if (fresh) {
    if (::ftruncate(fd, static_cast<off_t>(size)) != 0) {
      return Status::FromErrno(errno, "ftruncate " + path);
    }
  } else if (static_cast<size_t>(st.st_size) != size) {
    return Status::Corruption(path + ": size " + std::to_string(st.st_size) + ", expected " +
                              std::to_string(size));
  }
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return Status::FromErrno(errno, "mmap " + path);
  auto* bytes = static_cast<std::byte*>(p);
  // A creator that died between ftruncate and init leaves a zero header.
  uint32_t magic = 0;
  std::memcpy(&magic, bytes, sizeof magic);
  if (fresh || magic == 0) init(bytes);
  Status s = check(bytes);
  if (!s.ok()) {
    ::munmap(p, size);
    return s.WithContext(path);
  }
  return std::unique_ptr<SharedTable>(new SharedTable(path, bytes, size));
}

SharedTable::~SharedTable() {
  ::munmap(data_, size_);
}

}  // namespace vnvram::sim
