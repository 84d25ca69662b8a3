// OwnerToken: a flock-held file that shows other processes an open sim
// handle is alive, so a dead process's table entries can be reclaimed.
// OwnerToken is immutable after creation; OwnerAlive is thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/result.h"

namespace vnvram::sim {

// OwnerToken: lets other processes tell whether an open sim handle (a grant
// sharer, an event-channel handle) still exists, so what a dead process
// left in a shared table can be recognised and reclaimed. The token is a
// file DIR/owners/<id> on which the handle holds an exclusive flock; the
// kernel drops the lock when the last descriptor of it closes, i.e. when
// the process dies. Caveat: a child fork()ed while the token exists
// inherits the descriptor and keeps the token alive until it exits too.
// OwnerToken is immutable after creation; OwnerAlive is thread-safe.
class OwnerToken {
 public:
  // Creates a fresh token under `dir`/owners with a random nonzero id.
  static Result<std::unique_ptr<OwnerToken>> Create(const std::string& dir);
  // Removes the token: the handle is gone.
  ~OwnerToken();
  OwnerToken(const OwnerToken&) = delete;
  OwnerToken& operator=(const OwnerToken&) = delete;

  uint64_t id() const { return id_; }

 private:
  OwnerToken(std::string path, int fd, uint64_t id) : path_(std::move(path)), fd_(fd), id_(id) {}
  std::string path_;
  int fd_;
  uint64_t id_;
};

// False when token `id` under `dir` is gone or nobody holds its lock (its
// file is then removed). Id 0 ("not recorded yet") counts as alive.
bool OwnerAlive(const std::string& dir, uint64_t id);

}  // namespace vnvram::sim
