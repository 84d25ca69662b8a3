// Node paths of the sim xenstore: validation with C xenstored's rules
// (leading '/', characters [A-Za-z0-9-/_@], no "//", no trailing '/',
// XENSTORE_ABS_PATH_MAX, XENSTORE_REL_PATH_MAX below a domain's home for
// unprivileged callers) and resolution of relative paths under
// /local/domain/<caller>. Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "common/parse.h"
#include "common/result.h"

namespace vnvram::sim {

inline constexpr size_t kAbsPathMax = 3072;  // XENSTORE_ABS_PATH_MAX
inline constexpr size_t kRelPathMax = 2048;  // XENSTORE_REL_PATH_MAX

// "/local/domain/<domid>".
std::string DomainPath(DomId domid);

// Resolves `path` for a caller in domain `domid` and validates the result:
// an absolute path is kept, a relative one is put under DomainPath(domid).
// EINVAL (as a Status with that errno) for an invalid path. Special
// "@..." paths are not node paths and are rejected here.
Result<std::string> CanonicalNodePath(std::string_view path, DomId domid, bool privileged);

// The parent of a valid absolute path ("/" for "/a"; "/" for "/").
std::string ParentPath(std::string_view path);
// The last component of a valid absolute path other than "/".
std::string_view BaseName(std::string_view path);
// Joins a parent path and a child name.
std::string ChildPath(std::string_view parent, std::string_view child);

// True when `node` is `watched` or lies below it ("/" watches every node;
// a special "@..." node matches only itself).
bool PathIsWithin(std::string_view node, std::string_view watched);

}  // namespace vnvram::sim
