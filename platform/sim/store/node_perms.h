// Permissions of a sim xenstore node, with C xenstored's model: the first
// entry names the owner and the access of every domain not listed, later
// entries grant one domain each; the owner and privileged callers (dom0)
// get everything. Wire form "r3", "b0", ... Pure; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/parse.h"
#include "common/result.h"

namespace vnvram::sim {

// Access bits, as XS_PERM_* in xenstore_lib.h.
enum Access : uint8_t {
  kAccessNone = 0,
  kAccessRead = 1,
  kAccessWrite = 2,
  kAccessOwner = 8,  // computed only, never stored
};

struct NodePerm {
  DomId domid = 0;
  uint8_t access = kAccessNone;  // kAccessRead | kAccessWrite
  bool operator==(const NodePerm&) const = default;
};
using NodePerms = std::vector<NodePerm>;

// "n0", "r5", "w1", "b2".
std::string FormatNodePerm(const NodePerm& p);
// Strict: one letter of n/r/w/b then a decimal domain id; EINVAL otherwise.
Result<NodePerm> ParseNodePerm(std::string_view s);

// The access `domid` has to a node with `perms` (owner bit included).
uint8_t AccessFor(DomId domid, bool privileged, const NodePerms& perms);

}  // namespace vnvram::sim
