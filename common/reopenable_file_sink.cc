#include "common/reopenable_file_sink.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace vnvram::log {

namespace {

Result<int> OpenForAppend(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) return Status::FromErrno(errno, "open log file " + path);
  return fd;
}

}  // namespace

Result<std::shared_ptr<ReopenableFileSink>> ReopenableFileSink::Open(const std::string& path) {
  VNVRAM_ASSIGN_OR_RETURN(const int fd, OpenForAppend(path));
  return std::shared_ptr<ReopenableFileSink>(new ReopenableFileSink(path, fd));
}

ReopenableFileSink::~ReopenableFileSink() {
  ::close(fd_);
}

Status ReopenableFileSink::Reopen() {
  VNVRAM_ASSIGN_OR_RETURN(const int fd, OpenForAppend(path_));
  std::lock_guard<std::mutex> lock(mutex_);
  ::close(fd_);
  fd_ = fd;
  return Status::Ok();
}

void ReopenableFileSink::sink_it_(const spdlog::details::log_msg& msg) {
  spdlog::memory_buf_t line;
  formatter_->format(msg, line);
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    const ssize_t n = ::write(fd_, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // a full disk loses the line, never the daemon
    p += n;
    left -= static_cast<size_t>(n);
  }
}

}  // namespace vnvram::log
