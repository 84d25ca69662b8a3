#include "platform/sim/store/node_path.h"

#include <cerrno>

#include "platform/sim/store/xs_errors.h"

namespace vnvram::sim {

namespace {

bool ValidChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '/' || c == '_' || c == '@';
}

// Length of "/local/domain/<digits>/" at the start of `path`, 0 if absent.
size_t DomainPrefixLength(std::string_view path) {
  constexpr std::string_view kPrefix = "/local/domain/";
  if (path.substr(0, kPrefix.size()) != kPrefix) return 0;
  size_t i = kPrefix.size();
  const size_t digits_start = i;
  while (i < path.size() && i - digits_start < 5 && path[i] >= '0' && path[i] <= '9') ++i;
  if (i == digits_start || i >= path.size() || path[i] != '/') return 0;
  return i + 1;
}

}  // namespace

std::string DomainPath(DomId domid) {
  return "/local/domain/" + std::to_string(domid);
}

Result<std::string> CanonicalNodePath(std::string_view path, DomId domid, bool privileged) {
  std::string canon;
  if (!path.empty() && path[0] == '/') {
    canon.assign(path);
  } else {
    if (!path.empty() && path[0] == '@') {
      return XsError(EINVAL, "path '" + std::string(path.substr(0, 64)) + "' is a special path");
    }
    canon = DomainPath(domid) + "/" + std::string(path);
  }
  auto bad = [&](std::string_view why) {
    return XsError(EINVAL, "path '" + canon.substr(0, 64) + "': " + std::string(why));
  };
  if (canon.size() > 1 && canon.back() == '/') return bad("ends in '/'");
  if (canon.find("//") != std::string::npos) return bad("contains '//'");
  if (canon.size() > kAbsPathMax) return bad("longer than XENSTORE_ABS_PATH_MAX");
  if (!privileged && canon.size() - DomainPrefixLength(canon) > kRelPathMax) {
    return bad("longer than XENSTORE_REL_PATH_MAX");
  }
  for (char c : canon) {
    if (!ValidChar(c)) return bad("invalid character");
  }
  return canon;
}

std::string ParentPath(std::string_view path) {
  const size_t slash = path.rfind('/');
  if (slash == 0 || slash == std::string_view::npos) return "/";
  return std::string(path.substr(0, slash));
}

std::string_view BaseName(std::string_view path) {
  const size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

std::string ChildPath(std::string_view parent, std::string_view child) {
  std::string out(parent);
  if (out != "/") out += '/';
  out += child;
  return out;
}

bool PathIsWithin(std::string_view node, std::string_view watched) {
  if (watched.empty()) return false;
  if (watched[0] == '@' || node.empty() || node[0] == '@') return node == watched;
  if (watched == "/") return true;
  if (node.substr(0, watched.size()) != watched) return false;
  return node.size() == watched.size() || node[watched.size()] == '/';
}

}  // namespace vnvram::sim
