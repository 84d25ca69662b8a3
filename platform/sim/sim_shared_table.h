// SharedTable: a fixed-size file every sim process maps MAP_SHARED, created
// under flock; the substrate of the grant and port tables. Immutable after
// Open; the shared bytes are accessed through std::atomic_ref by its users.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "common/result.h"

namespace vnvram::sim {

// SharedTable: a fixed-size file that every process of the sim maps
// MAP_SHARED, the substrate of the grant table and the port table. Creation
// is serialised with flock so a concurrent opener sees either no file or a
// fully initialised header. The mapping is immutable after Open; the bytes
// inside are shared with other processes and must be accessed through
// std::atomic_ref by the tables built on it.
class SharedTable {
 public:
  // Opens `path` (creating it, mode 0600, when missing). A new file is sized
  // to `size` bytes of zeros and `init` writes its header; then `check`
  // validates the header of a new or existing file. A file of another size
  // is kCorruption. Every header starts with a nonzero 32-bit magic; a file
  // whose first four bytes are zero is (re)initialised.
  static Result<std::unique_ptr<SharedTable>> Open(
      const std::string& path, size_t size, const std::function<void(std::byte*)>& init,
      const std::function<Status(const std::byte*)>& check);
  ~SharedTable();
  SharedTable(const SharedTable&) = delete;
  SharedTable& operator=(const SharedTable&) = delete;

  std::byte* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  SharedTable(std::string path, std::byte* data, size_t size)
      : path_(std::move(path)), data_(data), size_(size) {}
  std::string path_;
  std::byte* data_;
  size_t size_;
};

}  // namespace vnvram::sim
