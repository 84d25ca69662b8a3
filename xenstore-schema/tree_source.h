// TreeSource: the read-only view of a xenstore tree the validator walks. One
// adapter reads a live store through platform::XenStore
// (xenstore_tree_source.h); MemoryTree (memory_tree.h) holds a tree in
// memory for tests. Implementations need not be thread-safe; the validator
// uses one from one thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "platform/xenstore.h"

namespace vnvram::schema {

class TreeSource {
 public:
  virtual ~TreeSource() = default;
  // kNotFound when the node does not exist.
  virtual Result<std::string> Read(std::string_view path) = 0;
  // Child names (not paths); kNotFound when the node does not exist.
  virtual Result<std::vector<std::string>> Directory(std::string_view path) = 0;
  // The owner entry first, as xenstored reports it.
  virtual Result<std::vector<platform::PermEntry>> GetPermissions(std::string_view path) = 0;
};

}  // namespace vnvram::schema
