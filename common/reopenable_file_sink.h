// ReopenableFileSink: an spdlog sink that appends each formatted line to a
// file opened O_APPEND (one write(2) per line, no user-space buffer), and
// can reopen its path (after logrotate renamed the file: lines written
// before the reopen stay in the renamed file, later ones go to a new file
// at the path). Thread-safe: writes and Reopen() take the sink's mutex.
#pragma once

#include <spdlog/sinks/base_sink.h>

#include <memory>
#include <mutex>
#include <string>

#include "common/result.h"

namespace vnvram::log {

class ReopenableFileSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  // Opens (creating it with mode 0640 when missing) `path` for appending.
  static Result<std::shared_ptr<ReopenableFileSink>> Open(const std::string& path);
  ~ReopenableFileSink() override;
  ReopenableFileSink(const ReopenableFileSink&) = delete;
  ReopenableFileSink& operator=(const ReopenableFileSink&) = delete;

  // Opens the path again and writes there from now on. On failure the sink
  // keeps writing to the file it had.
  Status Reopen();
  const std::string& path() const { return path_; }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override;
  void flush_() override {}

 private:
  ReopenableFileSink(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}

  const std::string path_;
  int fd_;  // guarded by mutex_ (base_sink's)
};

}  // namespace vnvram::log
