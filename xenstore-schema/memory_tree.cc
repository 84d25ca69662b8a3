#include "xenstore-schema/memory_tree.h"

namespace vnvram::schema {

namespace {

std::string Parent(std::string_view path) {
  const size_t slash = path.rfind('/');
  if (slash == 0 || slash == std::string_view::npos) return "/";
  return std::string(path.substr(0, slash));
}

bool IsUnder(std::string_view path, std::string_view dir) {
  if (dir == "/") return path.size() > 1 && path.front() == '/';
  return path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
         path[dir.size()] == '/';
}

}  // namespace

MemoryTree::MemoryTree() {
  nodes_["/"] = Node{"", {platform::PermEntry{0, platform::Perm::kNone}}};
}

void MemoryTree::Write(std::string_view path, std::string_view value) {
  const std::string p(path);
  if (nodes_.contains(p)) {
    nodes_[p].value = std::string(value);
    return;
  }
  const std::string parent = Parent(p);
  if (!nodes_.contains(parent)) Write(parent, "");
  nodes_[p] = Node{std::string(value), nodes_[parent].perms};
}

void MemoryTree::Remove(std::string_view path) {
  for (auto it = nodes_.begin(); it != nodes_.end();) {
    if (it->first == path || IsUnder(it->first, path)) {
      it = nodes_.erase(it);
    } else {
      ++it;
    }
  }
}

void MemoryTree::SetPermissions(std::string_view path, std::vector<platform::PermEntry> perms) {
  auto it = nodes_.find(path);
  if (it != nodes_.end()) it->second.perms = std::move(perms);
}

void MemoryTree::SetPermissionsRecursive(std::string_view path,
                                         const std::vector<platform::PermEntry>& perms) {
  for (auto& [p, node] : nodes_) {
    if (p == path || IsUnder(p, path)) node.perms = perms;
  }
}

Result<std::string> MemoryTree::Read(std::string_view path) {
  auto it = nodes_.find(path);
  if (it == nodes_.end()) return Status::NotFound(std::string(path));
  return it->second.value;
}

Result<std::vector<std::string>> MemoryTree::Directory(std::string_view path) {
  if (!nodes_.contains(path)) return Status::NotFound(std::string(path));
  std::vector<std::string> out;
  const std::string dir(path);
  for (auto it = nodes_.upper_bound(dir); it != nodes_.end(); ++it) {
    if (!IsUnder(it->first, dir)) {
      if (it->first.compare(0, dir.size(), dir) != 0) break;
      continue;
    }
    const std::string rest = it->first.substr(dir == "/" ? 1 : dir.size() + 1);
    if (rest.find('/') == std::string::npos) out.push_back(rest);
  }
  return out;
}

Result<std::vector<platform::PermEntry>> MemoryTree::GetPermissions(std::string_view path) {
  auto it = nodes_.find(path);
  if (it == nodes_.end()) return Status::NotFound(std::string(path));
  return it->second.perms;
}

}  // namespace vnvram::schema
