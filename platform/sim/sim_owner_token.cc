#include "platform/sim/sim_owner_token.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>

#include "platform/sim/sim_layout.h"

namespace vnvram::sim {

namespace {
std::string TokenPath(const std::string& dir, uint64_t id) {
  char name[32];
  std::snprintf(name, sizeof name, "/%016" PRIx64, id);
  return OwnersDir(dir) + name;
}
}  // namespace

Result<std::unique_ptr<OwnerToken>> OwnerToken::Create(const std::string& dir) {
  VNVRAM_RETURN_IF_ERROR(MakeDirs(OwnersDir(dir)));
  for (int attempt = 0; attempt < 16; ++attempt) {
    uint64_t id = 0;
    if (::getrandom(&id, sizeof id, 0) != static_cast<ssize_t>(sizeof id)) {
      return Status::FromErrno(errno, "getrandom");
    }
    if (id == 0) continue;
    const std::string path = TokenPath(dir, id);
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
      if (errno == EEXIST) continue;
      return Status::FromErrno(errno, "create " + path);
    }
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      ::close(fd);
      ::unlink(path.c_str());
      return Status::FromErrno(err, "flock " + path);
    }
    return std::unique_ptr<OwnerToken>(new OwnerToken(path, fd, id));
  }
  return Status::Internal("owner token: no free id after 16 attempts");
}

OwnerToken::~OwnerToken() {
  ::unlink(path_.c_str());
  ::close(fd_);
}

bool OwnerAlive(const std::string& dir, uint64_t id) {
  if (id == 0) return true;
  const std::string path = TokenPath(dir, id);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno != ENOENT;  // unreadable: do not guess "dead"
  bool alive = true;
  if (::flock(fd, LOCK_SH | LOCK_NB) == 0) {
    alive = false;
    ::unlink(path.c_str());
  } else if (errno != EWOULDBLOCK) {
    alive = true;
  }
  ::close(fd);
  return alive;
}

}  // namespace vnvram::sim
