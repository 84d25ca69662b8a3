// MemoryTree: an in-memory xenstore tree (values and permissions) that
// implements TreeSource, for tests of the validator and of code that reads
// the schema's nodes. Nodes created by Write inherit their parent's
// permissions, as xenstored does. Not thread-safe.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "xenstore-schema/tree_source.h"

namespace vnvram::schema {

class MemoryTree final : public TreeSource {
 public:
  MemoryTree();

  // Creates `path` and missing parents (parents get an empty value).
  void Write(std::string_view path, std::string_view value);
  // Removes `path` and its subtree.
  void Remove(std::string_view path);
  // Sets the permissions of `path` (which must exist) only.
  void SetPermissions(std::string_view path, std::vector<platform::PermEntry> perms);
  // Sets the permissions of `path` and every node below it.
  void SetPermissionsRecursive(std::string_view path,
                               const std::vector<platform::PermEntry>& perms);

  Result<std::string> Read(std::string_view path) override;
  Result<std::vector<std::string>> Directory(std::string_view path) override;
  Result<std::vector<platform::PermEntry>> GetPermissions(std::string_view path) override;

 private:
  struct Node {
    std::string value;
    std::vector<platform::PermEntry> perms;
  };
  std::map<std::string, Node, std::less<>> nodes_;
};

}  // namespace vnvram::schema
